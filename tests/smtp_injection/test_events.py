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
