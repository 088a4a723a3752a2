"""The admin as a newcomer met it (issue 15): the console's links once, in the header, each name
on one line; no admin page scrolls sideways at 400 px (a wide recipients table scrolls in its
own box); the templates list shows its Preview column whole at 1280 px."""

from __future__ import annotations

import pytest
from django.db import connections

from recipient_lists.services import recipient_list_create
from templates_app.services import template_create
from tests.browser import needs_chromium, screenshot

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

PAGES = {
    "home": "/admin/",
    "recipient-lists-app": "/admin/recipient_lists/",
    "templates": "/admin/templates_app/template/",
    "recipient-list": "/admin/recipient_lists/recipientlist/subscribers-of-the-quarterly-newsletter/change/",
}
# The console links, each on one line: an inline link broken inside its name has two boxes.
_BROKEN_LINKS = """() => [...document.querySelectorAll('nav.engage-console a')]
  .filter(a => a.getClientRects().length > 1).map(a => a.textContent)"""


@pytest.fixture
def admin_data(db):
    template_create(
        template_id="quarterly-newsletter-for-every-customer", name="Quarterly newsletter for every customer",
        content={"from": {"email": "news@example.com"}, "subject": "Hi", "html": "<p>Hi</p>"}, options={},
    )  # fmt: skip
    recipient_list_create(
        list_id="subscribers-of-the-quarterly-newsletter", name="Subscribers", description="", attributes={},
        recipients=[{"address": {"email": f"someone.with.a.long.address.{n}@subdomain.example.com",
                                 "name": "Grace Brewster Murray Hopper"},
                     "tags": ["newsletter", "quarterly"], "metadata": {"segment": "customers-since-2019"},
                     "substitution_data": {"plan": "enterprise-annual", "id": "1234567890"}} for n in range(3)],
    )  # fmt: skip


@pytest.mark.parametrize("name", list(PAGES))
def test_at_400_px_admin_pages_do_not_scroll_sideways_and_show_the_console_links_once_unbroken(
    admin_data, name, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # browser_page runs an event loop in this thread
    page = browser_page(live_server.url + PAGES[name])
    page.set_viewport_size({"width": 400, "height": 800})
    page.wait_for_timeout(200)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    screenshot(page, "admin-400-" + name)
    assert width <= 400, width
    assert page.evaluate(_BROKEN_LINKS) == []
    assert page.locator("nav.engage-console").count() == 1
    assert page.locator("a[href='/transmissions/']").count() == 1  # not a second table of the same links
    connections.close_all()


def test_at_1280_px_the_admin_home_lists_the_console_links_once_and_on_one_line_each(
    admin_data, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # browser_page runs an event loop in this thread
    page = browser_page(live_server.url + "/admin/")
    assert page.locator("a[href='/report/']").count() == 1
    assert page.evaluate(_BROKEN_LINKS) == []
    connections.close_all()


def test_at_1280_px_the_templates_list_shows_its_preview_column_whole(
    admin_data, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # browser_page runs an event loop in this thread
    page = browser_page(live_server.url + "/admin/templates_app/template/")
    results = page.locator("#changelist .results")
    scroll, client = results.evaluate("e => [e.scrollWidth, e.clientWidth]")
    screenshot(page, "admin-templates-1280")
    assert scroll <= client, (scroll, client)
    link = page.locator("td.field-preview_link a")
    assert link.inner_text() == "Preview" and link.is_visible()
    connections.close_all()
