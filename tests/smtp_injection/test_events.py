"""Events of an SMTP-injected message say they came over SMTP (issue 13, Deliver 7;
SMTP-INJECTION.md §1.6-1.7, §5.6), read back from the events API; a REST transmission's are
unchanged."""

from __future__ import annotations

from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from transmissions.models import Message, Transmission, TransmissionSource

SEARCH = "/api/v1/events/message"


def _events(api, transmission: int) -> list[dict]:
    from analytics.landing import land_once

    land_once(consumer="test", block_ms=None)
    found = api.get(SEARCH, {"transmissions": str(transmission), "events": "injection,delivery"})
    assert found.status_code == 200, found.content
    return found.json()["results"]


def test_injection_and_delivery_carry_recv_method_rcpt_type_and_smtp_template_id(smtp, smtp_key, relay, events, api):
    header = {"cc": ["cc@example.com"], "bcc": ["bcc@example.com"], "archive": ["arch@example.com"]}
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message(header))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    assert Transmission.objects.get(pk=tid).source == TransmissionSource.SMTP
    send_all(tid)

    found = _events(api, tid)
    assert sorted(event["type"] for event in found) == ["delivery"] * 4 + ["injection"] * 4
    kinds = {"jo@example.com": None, "cc@example.com": "cc", "bcc@example.com": "bcc", "arch@example.com": "archive"}
    for event in found:
        assert event["recv_method"] == "esmtp"
        assert event["template_id"] == f"smtp_{tid}" and event["template_version"] == "0"
        assert event.get("rcpt_type") == kinds[event["rcpt_to"]], event


def test_a_rest_transmission_has_no_recv_method_and_cannot_set_rcpt_type(api, relay, events):
    body = {
        "recipients": [{"address": "jo@example.com", "rcpt_type": "bcc"}],
        "content": {"from": "app@sender.example.com", "subject": "Hi", "text": "Hello"},
    }
    created = api.post("/api/v1/transmissions", body, format="json")
    assert created.status_code == 200, created.content
    tid = int(created.json()["results"]["id"])
    assert Transmission.objects.get(pk=tid).source == TransmissionSource.API
    assert "rcpt_type" not in Message.objects.get(transmission_id=tid).recipient
    send_all(tid)

    found = _events(api, tid)
    assert sorted(event["type"] for event in found) == ["delivery", "injection"]
    for event in found:
        assert event["template_id"] == "inline"
        assert "recv_method" not in event and "rcpt_type" not in event


def _at(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_an_injection_event_is_timed_when_the_listener_stored_the_message_not_when_it_was_relayed(
    smtp, smtp_key, relay, events, api
):
    """SparkPost's ``injection``: "Message is received by or injected into SparkPost". A
    message that waited in a backlog (here: stored ten minutes before a worker took it) keeps
    the time of its 250 on its ``injection``; its ``delivery`` has the hand-off's. On both
    sending paths: a transmission's chunks (``chunk_send``) and the listener's groups
    (``group_send``)."""
    from datetime import timedelta

    from transmissions.sending import group_send
    from transmissions.services import transmissions_start_group

    client = smtp.client()
    login(client, smtp_key)
    ids = []
    for rcpt in ("jo@example.com", "al@example.com"):
        code, reply = inject(client, [rcpt], message())
        assert code == 250, reply
        ids.append(transmission_id(reply))
    client.quit()
    Transmission.objects.filter(pk__in=ids).update(
        created_at=Transmission.objects.get(pk=ids[0]).created_at - timedelta(minutes=10)
    )
    stored = {pk: Transmission.objects.get(pk=pk).created_at for pk in ids}
    send_all(ids[0])
    group_send(transmissions=transmissions_start_group(transmission_ids=[ids[1]]), token="test")

    for tid in ids:
        found = {event["type"]: event for event in _events(api, tid)}
        assert set(found) == {"injection", "delivery"}
        assert abs(_at(found["injection"]["timestamp"]) - stored[tid]) < timedelta(milliseconds=1)  # API: ms
        assert _at(found["delivery"]["timestamp"]) - stored[tid] >= timedelta(minutes=10)


def test_an_injection_is_never_after_its_delivery_when_the_workers_clock_is_behind_the_databases(
    smtp, smtp_key, relay, events, api, monkeypatch
):
    """The injection's time comes from the database's clock (when the listener stored it), the
    delivery's from the worker's: a worker half a second behind (drift between hosts, a
    managed database) showed a message delivered before it was injected (an attacker's
    finding). The injection is never later than the worker's now."""
    from datetime import datetime, timedelta

    import tracking.events
    import transmissions.sending

    class _Behind(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) - timedelta(milliseconds=500)

    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message())
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    monkeypatch.setattr(tracking.events, "datetime", _Behind)  # this worker's clock, both places it is read
    monkeypatch.setattr(transmissions.sending, "datetime", _Behind)
    send_all(tid)
    monkeypatch.undo()
    found = {event["type"]: event for event in _events(api, tid)}
    assert _at(found["injection"]["timestamp"]) <= _at(found["delivery"]["timestamp"]), found
