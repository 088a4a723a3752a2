"""SMTP-injected messages obey and feed the suppression list (issue 14, Deliver 2-3; SPEC
A.5, B §11.8: "Both REST and SMTP injections are checked"), through a real listener on
loopback: a suppressed address gets its 250, then its injection and class-25 bounce, and is
not relayed; a hard bounce of an injected message suppresses the address for both types."""

from __future__ import annotations

from analytics.landing import land_once
from suppression.models import SuppressionEntry
from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from tracking.models import Event
from transmissions.models import Message

REASON = "554 5.7.1 recipient address was suppressed due to customer policy"


def injected(smtp, key: str, rcpts: list[str], x_msys_api: dict | None = None) -> int:
    """Inject one message over SMTP (STARTTLS, AUTH), generate and hand it off; its
    transmission id once its events landed."""
    client = smtp.client()
    login(client, key)
    code, reply = inject(client, rcpts, message(x_msys_api))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    send_all(tid)
    land_once(consumer="test", block_ms=None)
    return tid


def events_of(tid: int) -> dict[str, list[tuple[str, str, str, str, str]]]:
    """By recipient: (type, bounce_class, error_code, reason, recv_method), oldest first."""
    found: dict[str, list] = {}
    for event in Event.objects.filter(transmission_id=str(tid)).order_by("timestamp", "id"):
        found.setdefault(event.rcpt_to, []).append(
            (event.type, event.bounce_class, event.error_code, event.reason, event.extra.get("recv_method"))
        )
    return found


def test_a_suppressed_address_gets_its_250_then_a_class_25_bounce_and_is_not_relayed(
    smtp, smtp_key, relay, events, api
):
    assert (
        api.put("/api/v1/suppression-list/gone@example.com", {"type": "non_transactional"}, format="json").status_code
        == 200
    )
    tid = injected(smtp, smtp_key, ["gone@example.com", "jo@example.com"], {"campaign_id": "invoices"})
    assert [received.rcpt_tos for received in relay.received] == [["jo@example.com"]]
    states = dict(Message.objects.filter(transmission_id=tid).values_list("recipient__address__email", "state"))
    assert states == {"gone@example.com": "bounced", "jo@example.com": "delivered"}
    found = events_of(tid)
    assert found["gone@example.com"] == [
        ("injection", "", "", "", "esmtp"),
        ("bounce", "25", "554", REASON, "esmtp"),
    ]
    assert [kind for kind, *_ in found["jo@example.com"]] == ["injection", "delivery"]
    assert Event.objects.get(type="bounce").campaign_id == "invoices"

    # the header's transactional checks the other type, and its skip_suppression skips the list
    relay.handler.received.clear()
    injected(smtp, smtp_key, ["gone@example.com"], {"options": {"transactional": True}})
    injected(smtp, smtp_key, ["gone@example.com"], {"options": {"skip_suppression": True}})
    assert [received.rcpt_tos for received in relay.received] == [["gone@example.com"]] * 2


def test_a_hard_bounce_of_an_injected_message_suppresses_the_address_for_both_types(smtp, smtp_key, relay, events):
    relay.handler.refuse["gone@example.com"] = "550 5.1.1 no such user"
    tid = injected(smtp, smtp_key, ["gone@example.com"])
    assert events_of(tid)["gone@example.com"][-1][:3] == ("bounce", "10", "550")
    entries = sorted(SuppressionEntry.objects.values_list("recipient", "type", "source", "description"))
    assert [entry[:3] for entry in entries] == [
        ("gone@example.com", "non_transactional", "Bounce Rule"),
        ("gone@example.com", "transactional", "Bounce Rule"),
    ]
    message_id = Message.objects.get(transmission_id=tid).message_id
    assert all(message_id in description for *_, description in entries)

    del relay.handler.refuse["gone@example.com"]  # the relay would take it now: only the list stops it
    tid = injected(smtp, smtp_key, ["gone@example.com"], {"options": {"transactional": True}})
    assert relay.received == []
    assert events_of(tid)["gone@example.com"][-1] == ("bounce", "25", "554", REASON, "esmtp")
