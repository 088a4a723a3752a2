"""The console in a narrow window (issue 15): at 400 px wide no page scrolls sideways; a wide
table scrolls inside its own box and the navigation wraps. Each page is loaded with data in it
(transmissions, events with long links and agents, a report, the sink) and kept as a
screenshot under artifacts/ (``narrow-<page>.png``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.landing import outbox_land
from tests.analytics import data
from tests.browser import needs_chromium, screenshot
from tests.console.helpers import LONG_URL, hours_ago, land_stories, recent_events, sink_fill, story
from tests.transmissions.helpers import body, run

WIDTH, HEIGHT = 400, 800
# Elements wider than the window, for the failure message: the page's own, not those inside
# a box that scrolls (.scroll) or the navigation.
_OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .filter(e => !e.closest('.scroll'))
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right))
  .slice(0, 12)"""


@pytest.fixture
def console_data(transactional_db, api, relay, settings, tmp_path, staff_user) -> dict[str, str]:
    """Something on every page: a finished transmission with its events landed and a scheduled
    one (long campaign and description), message stories with long links and agents, the
    report's generated events, 60 messages in the sink. Returns the pages' paths by name."""
    settings.ENGAGE_SINK_DIR = tmp_path
    long = "quarterly-newsletter-for-every-customer-" * 2
    done = run(api, body(campaign_id=long[:64], description=long * 3, recipients=[
        {"address": {"email": f"someone.with.a.long.address.{n}@subdomain.example.com"}} for n in range(3)
    ])).id  # fmt: skip
    outbox_land()
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    response = api.post(
        "/api/v1/transmissions", body(campaign_id="later", options={"start_time": later}), format="json"
    )
    assert response.status_code == 200, response.content
    data.land(recent_events(timezone.now()))
    agent = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    )
    land_stories(story("m-long", "a.very.long.recipient.address@subdomain.example.com", hours_ago(2),
                       kinds=("injection", "delivery", "open", "click"), target_link_url=LONG_URL, user_agent=agent))  # fmt: skip
    names = sink_fill(tmp_path, 60)
    return {
        "overview": "/",
        "report": "/report/",
        "messages": "/messages/",
        "transmissions": "/transmissions/",
        "transmission": f"/transmissions/{done}/",
        "send": "/transmissions/new/",
        "sink": "/report/sink/",
        "sink-message": f"/report/sink/{names[-1]}",
        "tutorial": "/tutorial/",
    }


@pytest.mark.slow
@needs_chromium
def test_at_400_px_wide_no_console_page_scrolls_sideways(live_server, console_data, browser_page):
    page = browser_page(live_server.url + "/")  # signs in at the desktop size
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    wide = {}
    for name, path in console_data.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        screenshot(page, f"narrow-{name}")
        if page.evaluate("document.documentElement.scrollWidth") > WIDTH:
            wide[name] = page.evaluate(_OVERFLOWING)
        if name == "transmissions":  # the table is whole, in a box of its own that scrolls
            box = page.locator(".scroll:has(#transmissions)")
            assert box.evaluate("e => e.scrollWidth > e.clientWidth && e.clientWidth <= 400")
            assert page.locator("#transmissions th").last.inner_text() == "Description"
    assert wide == {}, wide  # the elements that stick out, per page


@pytest.mark.slow
@needs_chromium
def test_the_report_chart_follows_the_window_down_to_400_px(live_server, console_data, browser_page):
    # Opened wide, then the window narrowed (as a person drags it): the chart and its legend
    # shrink with it, and the page does not scroll sideways.
    page = browser_page(live_server.url + "/report/")
    assert page.locator("#chart canvas").count() == 1  # the report has data and a chart
    wide = page.eval_on_selector("#chart .uplot", "e => e.getBoundingClientRect().width")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.wait_for_function("document.querySelector('#chart .uplot').getBoundingClientRect().right <= 400")
    screenshot(page, "narrow-report-resized")
    assert wide > 900
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, page.evaluate(_OVERFLOWING)
    legend = page.eval_on_selector("#chart .u-legend", "e => e.getBoundingClientRect().right")
    assert legend <= WIDTH
    page.set_viewport_size({"width": 1280, "height": HEIGHT})  # and back
    page.wait_for_function(f"document.querySelector('#chart .uplot').getBoundingClientRect().width >= {wide - 1}")


@pytest.mark.slow
@needs_chromium
def test_at_1280_px_the_overview_shows_every_column_of_its_transmissions(live_server, console_data, browser_page):
    page = browser_page(live_server.url + "/")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    box = page.locator(".scroll:has(#transmissions)")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing hidden to scroll to
    last = page.locator("#transmissions th").last
    assert last.inner_text() == "Created"
    right = last.evaluate("e => e.getBoundingClientRect().right")
    assert right <= box.evaluate("e => e.getBoundingClientRect().right") and right <= 1280
    screenshot(page, "overview-1280")
