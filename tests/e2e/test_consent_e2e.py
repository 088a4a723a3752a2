"""Tracking consent the way a user walks it (issue 14, SPEC A.5), with a real Celery worker
(with beat: it generates, sends and lands) and a real SMTP relay: a denied recipient's
delivered parts are byte for byte those of tracking off; consent withdrawn after sending
leaves the old link redirecting and recording nothing; with ``ENGAGE_TRACKING_CONSENT_DEFAULT``
``denied`` only recipients who granted are tracked."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/transmissions"
CONSENT = "/api/v1/tracking-consent"
TARGET = "https://shop.example.com/offer?id=42"
CONTENT = {
    "from": {"email": "news@sender.test", "name": "News"},
    "subject": "Hello {{name}}",
    "html": f'<html><body><p>Hi {{{{name}}}}</p><a href="{TARGET}" data-msys-linkname="offer">Buy</a> '
    '<a href="https://shop.example.com/stop" data-msys-unsubscribe="1">stop</a></body></html>',
    "text": f"Hi {{{{name}}}}: {TARGET}",
}
TRACKED = re.compile(rb"http://testserver/[fq]/")


def send(api, relay, recipients: list[dict], **options) -> dict:
    """POST one transmission (the relay emptied first) and wait until it has ended; what the
    relay received, by address."""
    relay.handler.received.clear()
    body = {"campaign_id": "e2e-consent", "metadata": {"plan": "gold"}, "substitution_data": {"name": "Jo"},
            "content": CONTENT, "recipients": recipients, "options": options}  # fmt: skip
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    tid = response.json()["results"]["id"]
    wait_for(lambda: api.get(f"{URL}/{tid}").json()["results"]["transmission"]["state"] == "Success", 30, 0.25,
             what=f"transmission {tid} to end")  # fmt: skip
    received = {r.rcpt_tos[0]: r for r in relay.received}
    assert set(received) == {r["address"]["email"] for r in recipients}
    return received


def parts(received) -> dict[str, bytes]:
    """Each text part's decoded bytes, by content type."""
    return {
        part.get_content_type(): part.get_payload(decode=True)
        for part in received.message.walk()
        if part.get_content_type() in ("text/html", "text/plain")
    }


def tracked(received) -> bool:
    return any(TRACKED.search(body) for body in parts(received).values())


def test_a_denied_recipients_parts_are_byte_for_byte_those_of_tracking_off(api, e2e, relay):
    rcpt = {"address": {"email": "ada@example.com"}, "metadata": {"uid": "u-1"}, "tags": ["vip"]}
    off = send(api, relay, [rcpt], open_tracking=False, click_tracking=False)["ada@example.com"]
    denied = send(api, relay, [{**rcpt, "tracking_consent": "denied"}])["ada@example.com"]
    granted = send(api, relay, [rcpt])["ada@example.com"]
    assert tracked(granted) and not tracked(denied)
    assert parts(denied) == parts(off)
    assert f'href="{TARGET}"'.encode() in parts(denied)["text/html"]
    # the register says the same as the recipient object
    assert api.put(f"{CONSENT}/ada@example.com", {"consent": "denied"}, format="json").status_code == 200
    registered = send(api, relay, [rcpt])["ada@example.com"]
    assert parts(registered) == parts(off)
    assert "/u/" in registered.message["List-Unsubscribe"]  # not tracking: kept


def landed(kinds: set[str], rcpt_to: str) -> list:
    from tracking.models import Event

    return list(Event.objects.filter(type__in=kinds, rcpt_to=rcpt_to).values_list("type", flat=True))


def test_consent_withdrawn_after_sending_the_old_link_redirects_and_records_nothing(api, client, e2e, relay):
    sent = send(api, relay, [{"address": {"email": "bo@example.com"}}, {"address": {"email": "cy@example.com"}}])
    links = {}
    for address, received in sent.items():
        html = parts(received)["text/html"].decode()
        links[address] = (
            re.search(r'href="http://testserver(/f/[A-Za-z0-9_-]+)"', html).group(1),
            re.search(r'<img src="http://testserver(/q/[A-Za-z0-9_-]+)"', html).group(1),
        )
    click, pixel = links["bo@example.com"]
    assert client.get(click).status_code == 302
    wait_for(lambda: landed({"click"}, "bo@example.com"), 20, 0.25, what="the first click to land")

    assert (
        api.put(f"{CONSENT}/bo@example.com", {"consent": "denied", "source": "prefs"}, format="json").status_code == 200
    )
    clicked = client.get(click)
    assert clicked.status_code == 302 and clicked["Location"] == TARGET
    opened = client.get(pixel)
    assert opened.status_code == 200 and opened["Content-Type"] == "image/gif"
    # A later hit of another recipient lands after them (one stream, landed in order): once it
    # is in, the withdrawn recipient's hits have been through the lander.
    assert client.get(links["cy@example.com"][0]).status_code == 302
    wait_for(lambda: landed({"click"}, "cy@example.com"), 20, 0.25, what="the later click to land")
    assert landed({"click", "open", "initial_open"}, "bo@example.com") == ["click"]  # the first one only


@pytest.fixture
def default_denied(e2e):
    """The worker restarted with ENGAGE_TRACKING_CONSENT_DEFAULT=denied, then as it was."""
    saved = e2e.worker.env
    e2e.worker.stop()
    e2e.worker.env = {**saved, "ENGAGE_TRACKING_CONSENT_DEFAULT": "denied"}
    e2e.worker.start()
    try:
        yield
    finally:
        e2e.worker.stop()
        e2e.worker.env = saved
        e2e.worker.start()


def test_with_the_default_denied_only_recipients_who_granted_are_tracked(api, e2e, relay, default_denied):
    assert api.put(f"{CONSENT}/ada@example.com", {"consent": "granted"}, format="json").status_code == 200
    sent = send(api, relay, [
        {"address": {"email": "ada@example.com"}},  # granted in the register
        {"address": {"email": "bob@example.com"}, "tracking_consent": "granted"},  # for this transmission
        {"address": {"email": "cy@example.com"}},  # nothing said: the default
    ])  # fmt: skip
    assert tracked(sent["ada@example.com"]) and tracked(sent["bob@example.com"])
    assert not tracked(sent["cy@example.com"])
    assert f'href="{TARGET}"'.encode() in parts(sent["cy@example.com"])["text/html"]
