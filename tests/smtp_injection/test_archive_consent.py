"""Tracking consent of an SMTP ``archive`` copy (SPEC A.5; SMTP-INJECTION.md §1.6): the copy
replicates the envelope recipient's, tracked links and all, so it is tracked only when that
recipient is (and the archive recipient too): one who denied (or, with the default denied,
never granted) gets an untracked copy and so does its archive, whatever the archive
recipient said, with no pixel, its links as written and no metadata in any URL."""

from __future__ import annotations

import base64
import re

import pytest

from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from transmissions.models import Message

DEN, ARCHIVE = "den@example.com", "arch@example.com"
HEADER = {
    "metadata": {"secret": "ARCHMETA"},
    "archive": [ARCHIVE],
    "options": {"open_tracking": True, "click_tracking": True},
}


def _copies(smtp, smtp_key, relay) -> tuple[int, dict]:
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, [DEN], message(HEADER))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    send_all(tid)
    return tid, {received.rcpt_tos[0]: received for received in relay.received}


def _html(received) -> bytes:
    return next(p for p in received.message.walk() if p.get_content_type() == "text/html").get_payload(decode=True)


def _unsubscribe_token(received) -> tuple[bytes, object]:
    """The List-Unsubscribe URL's token, as anyone holding it reads it (base64) and decoded."""
    from tracking.signing import tracking_signer

    token = received.message["List-Unsubscribe"].split("/u/")[1].rstrip(">")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return raw, tracking_signer().decode(token, now=2**40, max_age=2**41)


def _consent(api, recipient: str, consent: str) -> None:
    response = api.put(f"/api/v1/tracking-consent/{recipient}", {"consent": consent}, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("default", "den_said", "archive_said"),
    [("granted", "denied", None), ("granted", "denied", "granted"), ("denied", None, "granted")],
    ids=["denied in the register", "denied, the archive recipient granted", "default denied, never granted"],
)
def test_the_archive_copy_of_an_untracked_recipient_is_untracked_byte_for_byte(
    smtp, smtp_key, relay, api, settings, default, den_said, archive_said
):
    settings.ENGAGE_TRACKING_CONSENT_DEFAULT = default
    for recipient, said in ((DEN, den_said), (ARCHIVE, archive_said)):
        if said:
            _consent(api, recipient, said)
    _tid, copies = _copies(smtp, smtp_key, relay)
    den, archive = copies[DEN], copies[ARCHIVE]
    assert _html(archive) == _html(den)
    assert b'href="https://example.com/invoice"' in _html(archive)
    for received in (den, archive):
        assert b"/f/" not in received.data and b"/q/" not in received.data
        raw, decoded = _unsubscribe_token(received)  # still there: unsubscribing is not tracking
        assert b"ARCHMETA" not in raw and b"secret" not in raw
        assert (decoded.rcpt_to, decoded.rcpt_meta, decoded.transmission_id) == (received.rcpt_tos[0], {}, "")
    assert b"den@" not in _unsubscribe_token(archive)[0]


def test_the_archive_copy_of_a_recipient_who_granted_is_tracked_for_that_recipient(
    smtp, smtp_key, relay, api, settings, events, client
):
    from analytics.landing import land_once

    settings.ENGAGE_TRACKING_CONSENT_DEFAULT = "denied"
    _consent(api, DEN, "granted")
    _consent(api, ARCHIVE, "granted")
    tid, copies = _copies(smtp, smtp_key, relay)
    archive_links = re.findall(rb'href="https?://[^"/]+(/f/[A-Za-z0-9_-]+)"', _html(copies[ARCHIVE]))
    assert archive_links and b"/q/" in _html(copies[ARCHIVE]) and _html(copies[ARCHIVE]) == _html(copies[DEN])
    assert client.get(archive_links[0].decode()).status_code == 302
    land_once(consumer="test", block_ms=None)
    found = api.get("/api/v1/events/message", {"transmissions": str(tid), "events": "click"}).json()["results"]
    den = Message.objects.get(transmission_id=tid, email=DEN)
    assert [(e["rcpt_to"], e["message_id"], e["rcpt_meta"]) for e in found] == [
        (DEN, den.message_id, {"secret": "ARCHMETA"})
    ]
