"""The message search page (issue 15, Deliver 3): ``/messages/``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from tests.browser import needs_chromium, screenshot
from tests.console.helpers import BOUNCE_RAW, DELAY_RAW, hours_ago, land_stories, messages_shown, story, types_shown

URL = "/messages/"
JO = ("m-jo", "jo@example.com", ("injection", "delay", "delivery", "open", "click", "list_unsubscribe"))
ANN = ("m-ann", "ann@example.org", ("injection", "bounce"))


@pytest.fixture
def two_messages(db):
    land_stories(
        story(JO[0], JO[1], hours_ago(5), kinds=JO[2]),
        story(
            ANN[0], ANN[1], hours_ago(3), kinds=ANN[2], campaign_id="autumn", template_id="tpl-b", transmission_id="77"
        ),
    )


def test_a_part_of_an_address_finds_nothing_and_says_recipients_are_whole_addresses(staff, two_messages):
    html = staff.get(URL, {"recipients": "jo, ann@example.org"}).content.decode()
    assert messages_shown(html) == ["m-ann"] and 'id="partial-recipients"' not in html  # something found
    html = staff.get(URL, {"recipients": "jo"}).content.decode()
    assert messages_shown(html) == [] and "0 messages" in html
    hint = html.split('id="partial-recipients"', 1)[1].split("</p>", 1)[0]
    assert "No recipient is <em>jo</em>: recipients are matched as whole addresses" in hint
    assert "Whole addresses, separated by commas: a part of one (jo) matches nothing." in html
    assert 'id="partial-recipients"' not in staff.get(URL, {"recipients": "nobody@example.com"}).content.decode()


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_signed_in_user_who_is_not_staff_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("pat", password="pw-for-tests"))
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_recipient_search_shows_that_message_alone_as_a_timeline_in_order(staff, two_messages):
    response = staff.get(URL, {"recipients": "JO@example.com"})  # case-insensitive, as the API
    html = response.content.decode()
    assert response.status_code == 200
    assert messages_shown(html) == ["m-jo"]
    assert types_shown(html, "m-jo") == list(JO[2])
    assert escape(DELAY_RAW) in html and "Bounce class</b> 70 Transient Failure (soft)" in html
    assert "offer: https://shop.example.com/offer" in html
    # the badge is the delivery outcome; the engagement is said beside it (found by a newcomer)
    assert (
        '<span class="outcome delivery">Delivered</span><span class="engaged">opened, clicked, unsubscribed</span>'
        in html
    )


def test_a_bounce_shows_the_reason_the_relay_gave_and_its_class(staff, two_messages):
    html = staff.get(URL, {"recipients": "ann@example.org"}).content.decode()
    assert types_shown(html, "m-ann") == ["injection", "bounce"]
    assert escape(BOUNCE_RAW) in html and "550 5.1.1 User unknown" in html
    assert "Bounce class</b> 10 Invalid Recipient (hard)" in html and "Code</b> 550" in html
    assert '<span class="outcome bounce">Bounced</span></h2>' in html


def test_injection_comes_before_the_answer_written_at_the_same_time(staff, db):
    at = hours_ago(1)
    events = story("m-same", "same@example.com", at, kinds=("injection", "delivery"))
    events[0]["timestamp"] = events[1]["timestamp"] = at
    land_stories(list(reversed(events)))
    assert types_shown(staff.get(URL).content.decode(), "m-same") == ["injection", "delivery"]


def test_events_of_one_second_are_in_their_natural_order_whatever_landed_first(staff, db):
    # Found by a newcomer: "Open" was listed before "Initial open" at the same second.
    at = hours_ago(1).replace(microsecond=100)
    kinds = ("injection", "delivery", "initial_open", "open", "click")
    events = story("m-tie", "tie@example.com", at, kinds=kinds)
    for n, event in enumerate(events):  # one second; the open's pixel loaded a little first
        event["timestamp"] = at.replace(microsecond={"open": 200, "initial_open": 900}.get(event["type"], 100 + n))
    land_stories(list(reversed(events)))
    assert types_shown(staff.get(URL).content.decode(), "m-tie") == list(kinds)


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"campaigns": "autumn"}, ["m-ann"]),
        ({"templates": "tpl-a"}, ["m-jo"]),
        ({"transmissions": "77"}, ["m-ann"]),
        ({"transmissions": "99999999999999999999999"}, []),  # a huge id finds nothing, as the API
        ({"events": "click"}, ["m-jo"]),
        ({"events": "bounce,click"}, ["m-ann", "m-jo"]),
        ({}, ["m-ann", "m-jo"]),  # newest first
    ],
)
def test_each_filter_finds_the_messages_the_events_api_finds(staff, api, two_messages, params, found):
    assert messages_shown(staff.get(URL, params).content.decode()) == found
    answer = api.get("/api/v1/events/message", params).json()["results"]
    assert sorted({event["message_id"] for event in answer}) == sorted(found)


def test_event_type_checkboxes_are_one_delimited_list(staff, two_messages):
    html = staff.get(URL + "?events=bounce&events=open").content.decode()
    assert messages_shown(html) == ["m-ann", "m-jo"]
    assert 'value="bounce" checked' in html and 'value="open" checked' in html


def test_a_message_found_by_a_click_shows_its_whole_story(staff, two_messages):
    html = staff.get(URL, {"events": "click"}).content.decode()
    assert types_shown(html, "m-jo") == list(JO[2])


def test_clicks_on_two_identical_links_say_which_position_was_clicked(staff, db):
    """Both pricing links are "Raw URL" with one URL: the position (the event's
    engage_link_position, the report's Position) tells them apart; a click on a link sent
    before positions existed shows none."""
    events = story("m-two", "two@example.com", hours_ago(2), kinds=("injection", "delivery", "click", "click", "click"))
    for event, position in zip(events[2:], (3, 2, None), strict=True):
        event.update(target_link_name="Raw URL", target_link_url="https://example.com/pricing")
        if position:
            event["engage_link_position"] = position
    land_stories(events)
    html = staff.get(URL, {"recipients": "two@example.com"}).content.decode()
    shown = [" ".join(re.sub(r"<[^>]+>", "", line).split()) for line in re.findall(r"<b>Link</b>.*?</span>\n", html)]
    assert shown == [
        "Link Raw URL, position 3: https://example.com/pricing",
        "Link Raw URL, position 2: https://example.com/pricing",
        "Link Raw URL: https://example.com/pricing",
    ]


def test_events_before_the_window_are_still_in_the_timeline(staff, db):
    land_stories(story("m-old", "old@example.com", hours_ago(30), kinds=("injection", "delivery")))
    land_stories(story("m-old", "old@example.com", hours_ago(2), kinds=("open",)))
    assert types_shown(staff.get(URL).content.decode(), "m-old") == ["injection", "delivery", "open"]


def test_the_default_window_is_the_api_s_and_from_widens_it(staff, db):
    land_stories(story("m-old", "old@example.com", hours_ago(50), kinds=("injection", "delivery")))
    assert messages_shown(staff.get(URL).content.decode()) == []
    start = hours_ago(72).strftime("%Y-%m-%dT%H:%M")
    assert messages_shown(staff.get(URL, {"from": start}).content.decode()) == ["m-old"]


@pytest.mark.parametrize(
    "params",
    [
        {"events": "nope"},
        {"from": "yesterday"},
        {"from": "2024-05-02T00:00", "to": "2024-05-01T00:00"},
        {"from": "99999-01-01T00:00"},
        {"from": "2024-05-01T00:00+99:00"},
        {"cursor": "not-a-cursor"},
        {"sending_ips": "1.2.3.4"},
        {"per_page": "0"},
        {"per_page": "ten"},
        {"bounce_classes": "hard"},
        {"recipients": "x" * 20000},
    ],
)
def test_a_bad_filter_shows_the_api_s_error_and_is_no_500(staff, api, db, params):
    response = staff.get(URL, params)
    assert response.status_code == 400
    error = api.get("/api/v1/events/message", params).json()["errors"][0]
    shown = re.search(r'<p class="error" role="alert">(.*?)</p>', response.content.decode(), re.S).group(1)
    assert shown == escape(f"{error['message']}: {error['description']}")


def test_paging_shows_each_message_once_and_the_last_page_has_no_next(staff, db):
    ids = [f"m-{n}" for n in range(5)]
    land_stories(
        *(
            story(mid, f"{mid}@example.com", hours_ago(10 - n), kinds=("injection", "delivery"))
            for n, mid in enumerate(ids)
        )
    )
    # m-0 has events on both sides of every page boundary: it is shown once, by its newest
    land_stories(story("m-0", "m-0@example.com", hours_ago(0.5), kinds=("open",)))
    seen, url, pages = [], URL + "?per_page=2", 0
    while url:
        html = staff.get(url).content.decode()
        seen += messages_shown(html)
        pages += 1
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = URL + found.group(1).replace("&amp;", "&") if found else ""
    assert pages == 3
    assert seen == ["m-0", "m-4", "m-3", "m-2", "m-1"]


def pager_link(html: str, rel: str) -> str:
    """The href of the pager's link ``rel`` (next, prev), "" when the page offers none."""
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return found.group(1).replace("&amp;", "&") if found else ""


def test_previous_page_goes_back_to_exactly_the_page_before_until_the_first(staff, db):
    land_stories(
        *(story(f"m-{n}", f"m-{n}@example.com", hours_ago(10 - n), kinds=("injection", "delivery")) for n in range(7))
    )
    forward, url = [], "?campaigns=spring&per_page=2"
    while url:
        html = staff.get(URL + url).content.decode()
        forward.append(messages_shown(html))
        url = pager_link(html, "next")
    assert forward == [["m-6", "m-5"], ["m-4", "m-3"], ["m-2", "m-1"], ["m-0"]]
    backward, query = [messages_shown(html)], {}
    while url := pager_link(html, "prev"):
        query = parse_qs(urlsplit(url).query)
        assert query["campaigns"] == ["spring"] and query["per_page"] == ["2"]  # the filters are kept
        html = staff.get(URL + url).content.decode()
        backward.append(messages_shown(html))
    assert backward == forward[::-1]
    assert "cursor" not in query and "First page" not in html  # back on the first page, which has no previous


def test_previous_page_past_the_pages_it_remembers_offers_the_first_page_only(staff, db, monkeypatch):
    monkeypatch.setattr("console.queries.MAX_BACK", 1)
    land_stories(*(story(f"m-{n}", f"m-{n}@example.com", hours_ago(10 - n), kinds=("injection",)) for n in range(4)))
    html = staff.get(URL, {"per_page": "1"}).content.decode()
    for _ in range(3):
        html = staff.get(URL + pager_link(html, "next")).content.decode()
    assert messages_shown(html) == ["m-0"]
    html = staff.get(URL + pager_link(html, "prev")).content.decode()
    assert messages_shown(html) == ["m-1"]
    assert pager_link(html, "prev") == "" and "First page" in html


def test_a_back_that_is_not_cursors_is_the_page_s_error_not_a_500(staff, db):
    response = staff.get(URL, {"cursor": "initial", "back": "not-a-cursor"})
    assert response.status_code == 400
    assert "&#x27;back&#x27; must be the cursors of this list&#x27;s earlier pages" in response.content.decode()


def test_the_next_link_keeps_the_filters(staff, db):
    land_stories(*(story(f"m-{n}", "same@example.com", hours_ago(n + 1), kinds=("injection",)) for n in range(3)))
    html = staff.get(URL, {"recipients": "same@example.com", "per_page": "1"}).content.decode()
    query = parse_qs(urlsplit(re.search(r'<a href="([^"]+)" rel="next">', html).group(1).replace("&amp;", "&")).query)
    assert query["recipients"] == ["same@example.com"] and query["per_page"] == ["1"] and query["cursor"]
    assert "3 messages" in html


def test_what_events_say_is_escaped(staff, db):
    land_stories(story("m-x", "x@example.com", hours_ago(1), kinds=("injection",), subject="<script>alert(1)</script>"))
    html = staff.get(URL).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_transmission_links_to_its_page(staff, two_messages):
    html = staff.get(URL, {"transmissions": "77"}).content.decode()
    assert 'href="/transmissions/77/"' in html


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_find_one_recipient_s_message_and_see_its_timeline(
    monkeypatch, live_server, transactional_db, staff_user, browser_page
):
    # Playwright's sync API runs an event loop in this thread, so Django refuses the test's own
    # (synchronous) queries unless told; the database fixtures above are set up before it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    land_stories(
        story(JO[0], JO[1], hours_ago(5), kinds=JO[2]),
        story(ANN[0], ANN[1], hours_ago(3), kinds=ANN[2]),
    )
    page = browser_page(live_server.url + URL)
    page.fill("#f-recipients", "jo@example.com")
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()
    sections = page.locator("section.message")
    assert sections.count() == 1
    assert sections.first.locator("ol.timeline li").evaluate_all("els => els.map(e => e.dataset.type)") == list(JO[2])
    assert DELAY_RAW in sections.first.inner_text()
    screenshot(page, "messages")


def test_the_page_s_queries_do_not_grow_with_its_messages(staff, db):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(URL).status_code == 200
        return len(captured)

    land_stories(story("m-a", "a@example.com", hours_ago(2), kinds=JO[2]))
    few = queries()
    land_stories(*(story(f"m-{n}", f"{n}@example.com", hours_ago(3), kinds=JO[2]) for n in range(8)))
    assert queries() == few


def test_the_quick_windows_keep_the_filters_and_widen_from(staff, db):
    land_stories(story("m-old", "old@example.com", hours_ago(100), kinds=("injection", "delivery")))
    html = staff.get(URL, {"recipients": "old@example.com", "to": "2999-01-01T00:00"}).content.decode()
    assert messages_shown(html) == []
    week = re.search(r'<a href="([^"]+)">7 days</a>', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(week).query)
    assert query["recipients"] == ["old@example.com"] and "to" not in query
    assert messages_shown(staff.get(URL + week).content.decode()) == ["m-old"]


def test_an_smtp_injected_message_names_its_smtp_template_id_and_says_how_it_came_in(staff, db):
    land_stories(
        story("m-smtp", "sam@example.com", hours_ago(2), kinds=("injection", "delivery"), template_id="smtp_4243",
              transmission_id="4243", recv_method="esmtp"),
        story("m-rest", "rae@example.com", hours_ago(2), kinds=("injection", "delivery"), template_id="inline"),
    )  # fmt: skip
    html = staff.get(URL, {"templates": "smtp_4243"}).content.decode()
    assert messages_shown(html) == ["m-smtp"]
    assert '<span class="template">Template smtp_4243 (SMTP injection)</span>' in html
    rest = staff.get(URL, {"recipients": "rae@example.com"}).content.decode()
    assert '<span class="template">Template inline</span>' in rest


def test_the_from_and_to_examples_are_the_search_s_own_defaults_not_a_stale_year(staff):
    html = staff.get("/messages/").content.decode()
    shown = dict(re.findall(r'id="f-(from|to)" name="(?:from|to)" value="" placeholder="([^"]+)"', html))
    assert shown == {"from": f"{hours_ago(24):%Y-%m-%dT%H:%M}", "to": f"{hours_ago(0):%Y-%m-%dT%H:%M}"} or shown == {
        "from": f"{hours_ago(24 + 1 / 60):%Y-%m-%dT%H:%M}",
        "to": f"{hours_ago(1 / 60):%Y-%m-%dT%H:%M}",
    }  # the minute may turn between the page and this line
    assert "2024-" not in html


def test_a_message_shows_the_metadata_and_tags_its_events_carry(staff, db):
    """A newcomer's finding: the X-MSYS-API header's metadata and tags reached the events API
    but no console page."""
    meta = {"order": "A-17", "note": "<b>bold</b>"}
    land_stories(story("m-meta", "meta@example.com", hours_ago(1), kinds=("injection", "delivery", "click"),
                       rcpt_meta=meta, rcpt_tags=["invoice", "eu"]))  # fmt: skip
    html = staff.get(URL, {"recipients": "meta@example.com"}).content.decode()
    assert '<span class="tags">Tags invoice, eu</span>' in html
    shown = escape('{"note": "<b>bold</b>", "order": "A-17"}')
    assert f'<span class="metadata">Metadata <code>{shown}</code></span>' in html
    assert "<b>bold</b>" not in html  # shown as text
