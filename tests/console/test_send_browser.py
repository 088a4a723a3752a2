"""Start a send with a browser alone (issue 15, Done when): sign in, create a recipient list in
the admin by pasting addresses, send a published template to it from the console's send page,
and watch the transmission's page show its progress."""

from __future__ import annotations

import re

import pytest

from recipient_lists.models import RecipientList
from templates_app.services import template_create
from tests.browser import needs_chromium, screenshot
from transmissions.models import Transmission, TransmissionState
from transmissions.sending import chunk_send
from transmissions.services import transmission_start_generation

CONTENT = {"from": {"email": "shop@example.com", "name": "Shop"}, "subject": "Hi {{name}}", "text": "Hi {{name}}"}
#: For typed addresses, which carry no substitution data: their display name alone (else the page
#: asks first: tests/console/test_send_missing_data.py).
NAMED = {**CONTENT, "subject": "Hi {{address.name}}", "text": "Hi {{address.name}}"}


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_create_a_list_send_to_it_and_watch_the_progress(
    monkeypatch, live_server, transactional_db, staff_user, relay, browser_page
):
    # Playwright's sync API runs an event loop in this thread, so Django refuses the test's own
    # (synchronous) queries unless told; the database fixtures above are set up before it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    template_create(template_id="welcome", name="Welcome", published=True, content=CONTENT, options={})
    page = browser_page(live_server.url + "/admin/recipient_lists/recipientlist/add/")
    page.fill("#id_id", "friends")
    page.fill("#id_name", "Friends")
    page.fill("#id_recipients_text", "email,name\nada@example.com,Ada\nbob@example.com,Bob\ncy@example.com,Cy\n")
    screenshot(page, "recipient-list-add")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    assert RecipientList.objects.get(pk="friends").total_accepted_recipients == 3

    page.goto(live_server.url + "/transmissions/")
    page.click("#send-link")
    page.wait_for_load_state()
    assert page.url == live_server.url + "/transmissions/new/"
    page.select_option("#id_template", "welcome")
    page.select_option("#id_recipient_list", "friends")
    page.fill("#id_campaign_id", "browser-send")
    screenshot(page, "send")
    page.click("#send-form button[type=submit]")
    page.wait_for_load_state()
    tx = Transmission.objects.get(campaign_id="browser-send")
    assert page.url == f"{live_server.url}/transmissions/{tx.pk}/"
    assert "3 recipients, sending now" in page.locator("[role=status]").inner_text()
    assert page.locator("#num_rcpts").inner_text() == "3"

    assert page.locator("meta[http-equiv=refresh]").count() == 1  # it reloads while starting

    # What the worker does (none runs in this test): generate and hand off every chunk.
    for chunk in transmission_start_generation(transmission_id=tx.pk):
        chunk_send(transmission_id=tx.pk, chunk=chunk, token="test")
    page.reload()
    assert page.locator("#num_generated").inner_text() == "3"
    assert page.locator("#state").inner_text() == "Success"
    screenshot(page, "send-progress")
    assert Transmission.objects.get(pk=tx.pk).state == TransmissionState.SUCCESS
    assert sorted(rcpt for received in relay.received for rcpt in received.rcpt_tos) == [
        "ada@example.com", "bob@example.com", "cy@example.com"
    ]  # fmt: skip


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_a_half_filled_send_later_is_stopped_and_send_is_disabled_while_sending(
    monkeypatch, live_server, transactional_db, staff_user, browser_page
):
    page = _send_form_filled(monkeypatch, live_server, browser_page)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    for box in ("#id_start_date", "#id_start_time"):  # the whole value shows: nothing cut or run together
        assert page.eval_on_selector(box, "e => e.scrollWidth <= e.clientWidth"), box

    page.fill("#id_start_time", "10:30")  # a time, no date
    page.click("#send-button")
    assert page.locator("#when-error").inner_text().startswith("Send later has a time but no date")

    page.fill("#id_start_time", "")
    page.fill("#id_start_date", "06/01/2030")  # a US date, not the YYYY-MM-DD asked for
    page.fill("#id_start_time", "10:30")
    page.click("#send-button")
    assert page.locator("#when-error").inner_text().startswith("Send later is incomplete or not in the format")
    screenshot(page, "send-later-incomplete")
    assert posts == [] and not Transmission.objects.exists()

    page.fill("#id_start_date", "")
    page.fill("#id_start_time", "")
    # What the button looks like once the page's own submit handler has run (kept across the load).
    page.evaluate(
        """() => document.getElementById("send-form").addEventListener("submit", () => {
            const b = document.getElementById("send-button");
            sessionStorage.setItem("button", JSON.stringify([b.disabled, b.textContent]));
        })"""
    )
    page.click("#send-button")
    page.wait_for_url(re.compile(r".*/transmissions/[0-9]+/$"))
    assert page.evaluate("sessionStorage.getItem('button')") == '[true,"Sending…"]'  # no second click
    assert len(posts) == 1 and Transmission.objects.count() == 1
    assert "sending now" in page.locator("[role=status]").inner_text()


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_a_past_start_time_is_said_at_the_top_in_view(
    monkeypatch, live_server, transactional_db, staff_user, browser_page
):
    page = _send_form_filled(monkeypatch, live_server, browser_page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill("#id_start_date", "2020-01-01")
    page.fill("#id_start_time", "10:30")
    page.click("#send-button")
    page.wait_for_load_state()
    summary = page.locator("#error-summary")
    assert summary.inner_text().startswith("Not sent:")
    assert "When: Send later is in the past: 2020-01-01 10:30 UTC" in summary.inner_text()
    in_view = """e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"""
    assert page.eval_on_selector("#error-summary li", in_view)  # the error itself, not only a heading
    assert page.evaluate("document.activeElement.id") == "error-summary"
    screenshot(page, "send-past-time")
    page.click("#error-summary li a")  # the link goes to the field to fix
    assert page.evaluate("document.activeElement.id") == "id_start_date"
    assert not Transmission.objects.exists()


@pytest.mark.slow
@needs_chromium
def test_in_a_browser_the_same_send_again_asks_first_and_sends_on_send_it_again_anyway(
    monkeypatch, live_server, transactional_db, staff_user, browser_page
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    template_create(template_id="welcome", name="Welcome", published=True, content=NAMED, options={})
    page = browser_page(live_server.url + "/transmissions/new/")

    def send_the_same() -> None:  # as after Back: a new form, the same fields
        page.goto(live_server.url + "/transmissions/new/")
        page.select_option("#id_template", "welcome")
        page.fill("#id_addresses", "Ada <ada@example.com>")
        page.fill("#id_campaign_id", "again")
        page.click("#send-button")
        page.wait_for_load_state()

    send_the_same()
    first = Transmission.objects.get()
    assert "1 recipient, sending now" in page.locator("[role=status]").inner_text()
    send_the_same()
    warning = page.locator("#resend-warning")
    assert warning.inner_text().startswith("Not sent: you sent this under a minute ago.")
    assert warning.locator(f'a[href="/transmissions/{first.pk}/"]').count() == 2
    screenshot(page, "send-again-asked")
    assert Transmission.objects.count() == 1
    page.click("#resend-button")  # without the box ticked: asked again, nothing sent
    page.wait_for_load_state()
    assert page.locator("#resend-warning").count() == 1 and Transmission.objects.count() == 1
    page.check("#id_resend")
    page.click("#resend-button")
    page.wait_for_url(re.compile(r".*/transmissions/[0-9]+/$"))
    assert Transmission.objects.count() == 2 and not page.url.endswith(f"/{first.pk}/")


def _send_form_filled(monkeypatch, live_server, browser_page):
    """The send page with a published template ``welcome`` chosen and one address typed."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    template_create(template_id="welcome", name="Welcome", published=True, content=NAMED, options={})
    page = browser_page(live_server.url + "/transmissions/new/")
    page.select_option("#id_template", "welcome")
    page.fill("#id_addresses", "Ada <ada@example.com>")
    return page
