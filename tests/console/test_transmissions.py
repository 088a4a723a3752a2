"""The transmissions pages (issue 15, Deliver 4): ``/transmissions/``, ``/transmissions/<id>/``
and the cancel form of a scheduled one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from analytics.landing import outbox_land
from tests.browser import needs_chromium, screenshot
from tests.console.helpers import create, scheduled
from tests.transmissions.helpers import URL as API
from tests.transmissions.helpers import body, run
from transmissions.models import Message, MessageState, Transmission, TransmissionSource, TransmissionState
from transmissions.services import transmission_start_generation

PAGE = "/transmissions/"


def recipients(count: int) -> list[dict]:
    return [{"address": {"email": f"r{n}@example.com"}} for n in range(count)]


def api_detail(api, tid: int) -> dict:
    return api.get(f"{API}/{tid}").json()["results"]["transmission"]


def row(html: str, tid: int) -> str:
    return html.split(f'<tr data-id="{tid}">', 1)[1].split("</tr>", 1)[0]


def notice(html: str) -> str:
    return re.search(r'<p class="notice[^"]*" role="status">(.*?)</p>', html, re.S).group(1)


@pytest.mark.parametrize("path", [PAGE, f"{PAGE}1/"])
def test_anonymous_is_sent_to_sign_in(client, db, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_signed_in_user_who_is_not_staff_is_refused_and_cancels_nothing(client, api, django_user_model):
    tid = scheduled(api)
    client.force_login(django_user_model.objects.create_user("pat", password="pw-for-tests"))
    assert client.get(PAGE).status_code == 302
    response = client.post(f"{PAGE}{tid}/cancel/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED


def test_the_list_shows_state_progress_campaign_template_and_schedule(staff, api, relay):
    done = run(api, body(campaign_id="spring", recipients=recipients(3))).id
    later = scheduled(api, campaign_id="autumn")
    html = staff.get(PAGE).content.decode()
    assert html.index(f'data-id="{later}"') < html.index(f'data-id="{done}"')  # newest first
    assert "3 generated, 0 failed, of 3" in row(html, done) and "Success" in row(html, done)
    assert "spring" in row(html, done) and "inline" in row(html, done) and "immediately" in row(html, done)
    start = Transmission.objects.get(pk=later).start_time
    assert ">Submitted (scheduled)<" in row(html, later) and start.strftime("%Y-%m-%d %H:%M:%S") in row(html, later)
    assert "0 generated, 0 failed, of 1" in row(html, later)


def test_progress_while_generating_is_counted_from_the_messages_as_the_api_does(staff, api):
    tid = create(api, recipients=recipients(4))
    transmission_start_generation(transmission_id=tid)
    messages = list(Message.objects.filter(transmission_id=tid).order_by("id"))
    Message.objects.filter(pk__in=[m.pk for m in messages[:2]]).update(state=MessageState.DELIVERED)
    Message.objects.filter(pk=messages[2].pk).update(state=MessageState.GENERATION_FAILED)
    answer = api_detail(api, tid)
    assert (answer["state"], answer["num_generated"], answer["num_failed_gen"]) == ("Generating", 2, 1)
    listed = staff.get(PAGE).content.decode()
    assert "2 generated, 1 failed, of 4" in row(listed, tid)
    detail = staff.get(f"{PAGE}{tid}/").content.decode()
    assert '<span id="num_generated">2</span>' in detail and '<span id="num_failed_gen">1</span>' in detail
    assert '<meta http-equiv="refresh"' in listed and '<meta http-equiv="refresh"' in detail


def test_a_finished_transmission_s_page_does_not_reload(staff, api, relay):
    tid = run(api, body()).id
    outbox_land()
    assert '<meta http-equiv="refresh"' not in staff.get(f"{PAGE}{tid}/").content.decode()
    assert '<meta http-equiv="refresh"' not in staff.get(PAGE).content.decode()


def test_a_finished_transmission_s_page_reloads_until_its_events_have_landed(staff, api, relay):
    # Found by a newcomer: it froze at "Injection 94" beside "3000 generated" once Success.
    tid = run(api, body(recipients=recipients(3))).id
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUCCESS
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    assert '<meta http-equiv="refresh"' in html and "its events are still landing" in html
    assert "events land within a few seconds" in html and "has landed yet" not in html
    outbox_land()
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    assert '<meta http-equiv="refresh"' not in html and 'data-type="injection"' in html


def test_a_finished_transmission_s_page_stops_reloading_a_while_after_its_end(staff, api, relay):
    tid = run(api, body(recipients=recipients(2))).id
    Transmission.objects.filter(pk=tid).update(generation_end_time=datetime.now(UTC) - timedelta(minutes=6))
    assert '<meta http-equiv="refresh"' not in staff.get(f"{PAGE}{tid}/").content.decode()


def test_a_canceled_transmission_that_never_started_shows_no_generation_times(staff, api):
    tid = scheduled(api)
    staff.post(f"{PAGE}{tid}/cancel/")
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    assert "Generation ended" not in html and "Generation started" not in html
    assert "it never started, so nothing of it was sent" in html
    assert '<meta http-equiv="refresh"' not in html


def test_the_cancel_window_is_said_in_minutes(staff, api, settings):
    settings.ENGAGE_SCHEDULED_DELETE_WINDOW = 600
    html = staff.get(f"{PAGE}{scheduled(api)}/").content.decode()
    assert "it can be canceled until 10 minutes before its start" in html and "600 seconds" not in html
    settings.ENGAGE_SCHEDULED_DELETE_WINDOW = 3600
    assert "under 1 hour: too close" in staff.get(f"{PAGE}{scheduled(api, hours=0.5)}/").content.decode()


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"campaign": "autumn"}, {"autumn"}),
        ({"template": "inline"}, {"spring", "autumn"}),
        ({"template": "tpl-nope"}, set()),
        ({"state": "submitted"}, {"autumn"}),
        ({"state": "Success"}, {"spring"}),
    ],
)
def test_the_list_filters_by_campaign_template_and_state(staff, api, relay, params, expect):
    ids = {"spring": run(api, body(campaign_id="spring")).id, "autumn": scheduled(api, campaign_id="autumn")}
    html = staff.get(PAGE, params).content.decode()
    assert {name for name, tid in ids.items() if f'data-id="{tid}"' in html} == expect


def test_an_smtp_injection_shows_and_filters_as_its_events_name_it_not_as_inline(staff, api):
    smtp = Transmission.objects.create(
        source=TransmissionSource.SMTP, content={"email_rfc822": "Subject: hi\r\n\r\nhi"}
    )
    inline = create(api)
    template_id = f"smtp_{smtp.id}"
    listed = staff.get(PAGE).content.decode()
    assert f">{template_id} <span" in row(listed, smtp.id) and "SMTP injection" in row(listed, smtp.id)
    assert ">inline<" in row(listed, inline) and "SMTP" not in row(listed, inline)
    assert re.findall(r'<tr data-id="(\d+)">', staff.get(PAGE, {"template": "inline"}).content.decode()) == [
        str(inline)
    ]
    by_id = staff.get(PAGE, {"template": template_id}).content.decode()
    assert re.findall(r'<tr data-id="(\d+)">', by_id) == [str(smtp.id)]
    detail = staff.get(f"{PAGE}{smtp.id}/").content.decode()
    assert re.search(rf'<dd id="template">{template_id} \(SMTP injection', detail)
    assert '<dd id="template">inline<' in staff.get(f"{PAGE}{inline}/").content.decode()
    overview = staff.get("/").content.decode()
    assert f"<td>{template_id} (SMTP injection)</td>" in overview


@pytest.mark.parametrize("state", TransmissionState.values)
def test_each_state_the_filter_offers_is_the_word_its_rows_show_and_shows_only_them(staff, db, state):
    made = {value: Transmission.objects.create(campaign_id=value, state=value).id for value in TransmissionState.values}
    everything = staff.get(PAGE).content.decode()
    options = dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', everything))
    assert set(options) == set(TransmissionState.values)
    shown = {
        value: re.search(r'<td class="state">([^<]*)</td>', row(everything, tid))[1] for value, tid in made.items()
    }
    assert shown == options  # the same word in the filter and in the rows, one word per state
    filtered = staff.get(PAGE, {"state": state}).content.decode()
    rows = re.findall(r'<tr data-id="(\d+)">', filtered)
    assert rows == [str(made[state])]
    assert re.findall(r'<td class="state">([^<]*)</td>', filtered) == [options[state]]


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"state": "bogus"}, "'state' must be one of"),
        ({"before": "abc"}, "'before' must be a transmission id"),
        ({"before": "9" * 30}, "'before' must be a transmission id"),
        ({"campaign": "c" * 65}, "'campaign' must be at most 64 characters"),
    ],
)
def test_a_bad_filter_is_shown_not_a_500(staff, db, params, said):
    response = staff.get(PAGE, params)
    html = response.content.decode()
    assert response.status_code == 400 and f'<p class="error" role="alert">invalid params: {escape(said)}' in html
    assert "<table" not in html


def test_the_list_pages_by_id(staff, api, monkeypatch):
    ids = [create(api, campaign_id=f"c{n}") for n in range(3)]
    monkeypatch.setattr("console.views.transmissions.TRANSMISSIONS_PER_PAGE", 2)
    first = staff.get(PAGE).content.decode()
    link = re.search(r'<a href="([^"]+)" rel="next">', first).group(1).replace("&amp;", "&")
    second = staff.get(PAGE + link).content.decode()
    assert [f'data-id="{tid}"' in first for tid in ids] == [False, True, True]
    assert [f'data-id="{tid}"' in second for tid in ids] == [True, False, False]
    assert 'rel="next"' not in second and "First page" in second


def test_previous_page_goes_back_page_by_page_to_the_first(staff, api, monkeypatch):
    ids = [create(api, campaign_id="paged") for _ in range(5)]
    create(api, campaign_id="other")
    monkeypatch.setattr("console.views.transmissions.TRANSMISSIONS_PER_PAGE", 2)

    def shown(html: str) -> list[int]:
        return [int(tid) for tid in re.findall(r'<tr data-id="(\d+)">', html)]

    def link(html: str, rel: str) -> str:
        found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
        return found.group(1).replace("&amp;", "&") if found else ""

    html = staff.get(PAGE, {"campaign": "paged"}).content.decode()
    forward = [shown(html)]
    while url := link(html, "next"):
        html = staff.get(PAGE + url).content.decode()
        forward.append(shown(html))
    assert forward == [ids[:2:-1], ids[2:0:-1], ids[:1]]
    backward = [shown(html)]
    while url := link(html, "prev"):
        html = staff.get(PAGE + url).content.decode()
        backward.append(shown(html))
    assert backward == forward[::-1] and "First page" not in html


@pytest.mark.parametrize("back", ["abc", "1.x", ".".join(["1"] * 51)])
def test_a_back_that_is_not_ids_is_shown_not_a_500(staff, db, back):
    response = staff.get(PAGE, {"before": "9", "back": back})
    assert response.status_code == 400 and "&#x27;back&#x27; must be the cursors" in response.content.decode()


def test_the_detail_shows_the_api_s_figures_and_its_events_per_type(staff, api, relay):
    tid = run(api, body(campaign_id="spring", recipients=recipients(3))).id
    outbox_land()
    answer = api_detail(api, tid)
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    for name in ("num_generated", "num_failed_gen", "num_rcpts"):
        assert f'id="{name}">{answer[name]}' in html
    assert f'id="state" data-state="{answer["state"]}">' in html
    events = api.get("/api/v1/events/message", {"transmissions": str(tid)}).json()["results"]
    for kind in {event["type"] for event in events}:
        count = sum(event["type"] == kind for event in events)
        assert re.search(rf'<tr data-type="{kind}"><td><a [^>]+>[^<]+</a></td><td class="n">{count}</td></tr>', html)
    assert f"/messages/?transmissions={tid}" in html
    assert 'id="cancel"' not in html


def test_the_events_link_opens_the_message_search_on_its_messages(staff, api, relay):
    tid = run(api, body(recipients=recipients(2))).id
    outbox_land()
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    link = re.search(r'<a href="([^"]+)" id="messages-link">', html).group(1).replace("&amp;", "&")
    found = re.findall(r'data-message-id="([^"]+)"', staff.get(link).content.decode())
    assert sorted(found) == sorted(Message.objects.filter(transmission_id=tid).values_list("message_id", flat=True))


@pytest.mark.parametrize("raw", ["abc", "1" * 25, str(2**63), "12345", "-1", "1.5"])
def test_an_unknown_or_malformed_id_is_404(staff, db, raw):
    assert staff.get(f"{PAGE}{raw}/").status_code == 404
    assert staff.post(f"{PAGE}{raw}/cancel/").status_code == 404


def test_cancel_of_a_scheduled_transmission_cancels_it(staff, api):
    tid = scheduled(api)
    page = staff.get(f"{PAGE}{tid}/").content.decode()
    assert 'id="cancel"' in page and "csrfmiddlewaretoken" in page
    response = staff.post(f"{PAGE}{tid}/cancel/", follow=True)
    assert response.redirect_chain == [(f"/transmissions/{tid}/", 303)]
    assert notice(response.content.decode()) == f"Transmission {tid} is canceled."
    assert Transmission.objects.get(pk=tid).state == TransmissionState.CANCELED
    assert api_detail(api, tid)["state"] == "Canceled"
    assert 'id="cancel"' not in response.content.decode()


def test_cancel_of_a_finished_transmission_shows_the_service_s_error(staff, api, relay):
    tid = run(api, body()).id
    response = staff.post(f"{PAGE}{tid}/cancel/", follow=True)
    said = notice(response.content.decode())
    assert "2006" in said and "only scheduled transmissions can be deleted" in said
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUCCESS


def test_cancel_too_close_to_the_start_shows_the_window(staff, api, settings):
    settings.ENGAGE_SCHEDULED_DELETE_WINDOW = 3600
    tid = scheduled(api, hours=0.5)
    said = notice(staff.post(f"{PAGE}{tid}/cancel/", follow=True).content.decode())
    assert "2003" in said and "Deletion time window (3600 seconds)" in said
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED


def test_a_scheduled_send_too_close_to_its_start_offers_no_cancel_button(staff, api, settings):
    # Found by a newcomer: the button was offered, then the cancel was refused (2003).
    settings.ENGAGE_SCHEDULED_DELETE_WINDOW = 3600
    page = staff.get(f"{PAGE}{scheduled(api, hours=0.5)}/").content.decode()
    assert 'id="cancel"' not in page and "too close to its start to be canceled" in page
    page = staff.get(f"{PAGE}{scheduled(api, hours=2)}/").content.decode()
    assert 'id="cancel"' in page and "confirm(" in page


def test_cancel_without_the_csrf_token_is_refused(api, staff_user):
    tid = scheduled(api)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    assert browser.post(f"{PAGE}{tid}/cancel/").status_code == 403
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(f"{PAGE}{tid}/").content.decode())
    assert browser.post(f"{PAGE}{tid}/cancel/", {"csrfmiddlewaretoken": token.group(1)}).status_code == 303
    assert Transmission.objects.get(pk=tid).state == TransmissionState.CANCELED


def test_cancel_is_a_post(staff, api):
    tid = scheduled(api)
    assert staff.get(f"{PAGE}{tid}/cancel/").status_code == 405


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_open_a_scheduled_transmission_and_cancel_it(
    monkeypatch, live_server, transactional_db, staff_user, api, relay, browser_page
):
    # Playwright's sync API runs an event loop in this thread, so Django refuses the test's own
    # (synchronous) queries unless told; the database fixtures above are set up before it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    done = run(api, body(campaign_id="spring", recipients=recipients(3))).id
    tid = scheduled(api, campaign_id="autumn")
    page = browser_page(live_server.url + PAGE)
    assert page.locator(f'tr[data-id="{done}"] .figures').inner_text() == "3 generated, 0 failed, of 3"
    screenshot(page, "transmissions")
    page.click(f'tr[data-id="{tid}"] a')
    page.wait_for_load_state()
    assert page.locator("#state").inner_text() == "Submitted (scheduled)"
    screenshot(page, "transmission")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#cancel button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#state").inner_text() == "Canceled"
    assert asked and str(tid) in asked[0]  # the browser asked before canceling
    assert f"Transmission {tid} is canceled." in page.locator("[role=status]").inner_text()
    assert Transmission.objects.get(pk=tid).state == TransmissionState.CANCELED


def test_the_list_s_queries_do_not_grow_with_its_rows(staff, api):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(PAGE).status_code == 200
        return len(captured)

    transmission_start_generation(transmission_id=create(api, recipients=recipients(2)))
    few = queries()
    for _ in range(4):
        transmission_start_generation(transmission_id=create(api, recipients=recipients(2)))
        scheduled(api)
    assert queries() == few


def test_what_a_transmission_says_is_escaped(staff, api):
    tid = scheduled(api, campaign_id="<b>camp</b>", description="<script>alert(1)</script>")
    for html in (staff.get(PAGE).content.decode(), staff.get(f"{PAGE}{tid}/").content.decode()):
        assert "<script>alert(1)" not in html and "<b>camp</b>" not in html
        assert "&lt;b&gt;camp&lt;/b&gt;" in html


def test_a_scheduled_send_has_one_label_on_the_overview_the_list_and_its_page(staff, api, relay):
    tid = scheduled(api)
    now = run(api, body(recipients=recipients(1))).id
    overview = staff.get("/").content.decode()
    listed = staff.get(PAGE).content.decode()
    own = staff.get(f"{PAGE}{tid}/").content.decode()
    assert f'<a href="/transmissions/{tid}/">{tid}</a></td><td>Submitted (scheduled)</td>' in overview
    assert '<td class="state">Submitted (scheduled)</td>' in row(listed, tid)
    assert '">Submitted (scheduled)</dd>' in own
    assert '<td class="state">Success</td>' in row(listed, now)  # a sent one says what it is


@pytest.mark.parametrize("raw", ["999", "abc"])
def test_an_unknown_transmission_says_so_and_links_to_the_list(staff, db, raw):
    for response in (staff.get(f"{PAGE}{raw}/"), staff.post(f"{PAGE}{raw}/cancel/")):
        html = response.content.decode()
        assert response.status_code == 404
        assert f'<h1 id="missing">No transmission {raw}</h1>' in html and 'href="/transmissions/"' in html
        assert "Engage has no page at" not in html


def test_a_long_unknown_transmission_id_is_cut_short(staff, db):
    html = staff.get(f"{PAGE}{'1' * 500}/").content.decode()
    assert f"No transmission {'1' * 40}…" in html and "1" * 41 not in html


def test_a_send_now_transmission_says_nothing_about_canceling(staff, api, settings):
    settings.ENGAGE_SCHEDULED_DELETE_WINDOW = 600
    tid = create(api)  # not started yet (no worker here): still "submitted", with no start time
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED
    html = staff.get(f"{PAGE}{tid}/").content.decode()
    assert "too close" not in html and "canceled" not in html.lower().split("<h2>events</h2>")[0]
