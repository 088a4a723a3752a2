"""The injection policy (``ENGAGE_SMTP_POLICY``, issue 13 Deliver 5, SMTP-INJECTION.md §5.8)
called by a real listener: its settings over the header's, its replies, its failures."""

from __future__ import annotations

import logging
import re
import time

import pytest

from mailcore.smtp_policy import PolicyAccept, PolicyReject, PolicyView, SmtpReply, SmtpSettings
from smtp_injection.services import smtp_policy_load
from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from transmissions.models import Message, Transmission

FAILED = (451, b"4.3.0 Policy evaluation failed, please retry")


def _send(listener, key: str, data: str, rcpts: tuple[str, ...] = ("jo@example.com",)):
    client = listener.client()
    login(client, key)
    try:
        return inject(client, list(rcpts), data)
    finally:
        client.close()


def test_policy_tracking_domain_and_open_tracking_off_win_over_a_header_that_turns_it_on(
    start_listener, smtp_key, relay
):
    seen: list[PolicyView] = []

    def policy(view: PolicyView) -> PolicyAccept:
        seen.append(view)
        return PolicyAccept(
            settings=SmtpSettings(open_tracking=False, tracking_domain="click.brand.example"),
            per_recipient={"al@EXAMPLE.com": SmtpSettings(tags=("vip",), metadata={"tier": "gold"})},
        )

    listener = start_listener(policy=policy)
    header = {"campaign_id": "spring", "metadata": {"customer": "42"}, "tags": ["billing"],
              "options": {"open_tracking": True, "click_tracking": True}}  # fmt: skip
    code, reply = _send(listener, smtp_key, message(header), ("jo@example.com", "al@example.com"))
    assert code == 250, reply
    (view,) = seen
    assert view.key_label == "billing app" and view.msys_api.campaign_id == "spring"
    assert view.rcpt_to == ("jo@example.com", "al@example.com") and view.header("subject") == "Your invoice"
    assert view.tls_version and view.tls_version.startswith("TLS") and view.client_address == "127.0.0.1"
    tid = transmission_id(reply)
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.tracking_domain == "click.brand.example" and transmission.campaign_id == "spring"
    assert transmission.options["open_tracking"] is False and transmission.options["click_tracking"] is True
    rows = {row.email: row.recipient for row in Message.objects.filter(transmission_id=tid)}
    assert rows["jo@example.com"]["tags"] == ["billing"] and rows["al@example.com"]["tags"] == ["vip"]
    assert rows["al@example.com"]["metadata"] == {"tier": "gold"}
    send_all(tid)
    assert len(relay.received) == 2
    for received in relay.received:
        html = received.data.decode()
        assert "/q/" not in html and "<img" not in html  # no open pixel
        assert re.search(r'href="https?://click\.brand\.example/f/[A-Za-z0-9_-]+"', html), html
        assert "https://example.com/invoice" not in html


def test_policy_reject_is_answered_with_its_own_reply(start_listener, smtp_key):
    def policy(view: PolicyView) -> PolicyReject:
        return PolicyReject(SmtpReply(550, "5.7.1", "Sending to example.com is not allowed"))

    listener = start_listener(policy=policy)
    assert _send(listener, smtp_key, message()) == (550, b"5.7.1 Sending to example.com is not allowed")
    assert not Transmission.objects.exists()


def test_a_policy_that_raises_is_451_and_logged(start_listener, smtp_key, caplog):
    def policy(view: PolicyView) -> None:
        raise RuntimeError("the rules database is down")

    listener = start_listener(policy=policy)
    with caplog.at_level(logging.ERROR, logger="smtp_injection.server"):
        assert _send(listener, smtp_key, message()) == FAILED
    assert "the policy raised" in caplog.text and "the rules database is down" in caplog.text
    assert not Transmission.objects.exists()


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), StopIteration()])
def test_a_policy_that_raises_what_is_not_an_exception_is_451_at_once_and_the_listener_goes_on(
    start_listener, smtp_key, raised
):
    """``SystemExit`` or ``KeyboardInterrupt`` from a policy reached the event loop and ended
    the listener (no reply, no shutdown); ``StopIteration`` was answered only at the policy's
    time limit (an attacker's findings)."""

    def policy(view: PolicyView) -> None:
        raise raised

    listener = start_listener(policy=policy, policy_timeout=5)
    began = time.monotonic()
    assert _send(listener, smtp_key, message()) == FAILED
    assert time.monotonic() - began < 4, "answered at once, not at the time limit"
    assert _send(listener, smtp_key, message()) == FAILED, "the listener still answers"
    assert not Transmission.objects.exists()


def test_a_policy_over_its_time_limit_is_451_and_logged(start_listener, smtp_key, caplog):
    def policy(view: PolicyView) -> None:
        time.sleep(3)

    listener = start_listener(policy=policy, policy_timeout=0.5)
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="smtp_injection.server"):
        assert _send(listener, smtp_key, message()) == FAILED
    assert time.monotonic() - began < 2.5
    assert "ran over 0.5s" in caplog.text
    assert not Transmission.objects.exists()


@pytest.mark.parametrize(
    "answer",
    [
        "accept",
        SmtpSettings(open_tracking="maybe"),  # type: ignore[arg-type]
        PolicyAccept(per_recipient={"jo@example.com": SmtpSettings(open_tracking=True)}),
    ],
)
def test_a_policy_answer_that_cannot_be_used_is_451(start_listener, smtp_key, answer):
    listener = start_listener(policy=lambda view: answer)
    assert _send(listener, smtp_key, message()) == FAILED
    assert not Transmission.objects.exists()


def test_a_policy_campaign_id_over_64_bytes_gets_momentums_reply(start_listener, smtp_key):
    listener = start_listener(policy=lambda view: SmtpSettings(campaign_id="c" * 65))
    assert _send(listener, smtp_key, message()) == (550, b"5.6.0 smtpapi_campaign_id context is limited to 64 bytes")


def test_policy_link_expiry_is_accepted_and_warned_about_once(start_listener, smtp_key, caplog, monkeypatch):
    import smtp_injection.services

    monkeypatch.setattr(smtp_injection.services, "_link_expiry_warned", False)
    listener = start_listener(policy=lambda view: SmtpSettings(link_expiry="3600"))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="smtp_injection.services"):
        assert _send(listener, smtp_key, message())[0] == 250
        assert _send(listener, smtp_key, message())[0] == 250
    assert caplog.text.count("link_expiry=3600") == 1


def test_policy_load_by_dotted_path():
    assert smtp_policy_load("") is None
    assert smtp_policy_load("tests.smtp_injection.policies.tracking_off").__name__ == "tracking_off"
    with pytest.raises(TypeError):
        smtp_policy_load("tests.smtp_injection.policies.NOT_CALLABLE")
    with pytest.raises(ImportError):
        smtp_policy_load("tests.smtp_injection.policies.missing")
