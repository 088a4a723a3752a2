"""What a policy may return, and the check of it (SMTP-INJECTION.md §1.10, §5.8)."""

from __future__ import annotations

import math

import pytest

from mailcore.msys_api import NO_HEADER, MsysApiError
from mailcore.smtp_policy import (
    POLICY_FAILED,
    PolicyAccept,
    PolicyDecisionError,
    PolicyReject,
    PolicyView,
    policy_decision_check,
)
from mailcore.smtp_reply import SmtpReply
from mailcore.smtp_settings import SmtpSettings


def _failure(decision: object) -> str:
    with pytest.raises(PolicyDecisionError) as caught:
        policy_decision_check(decision)
    assert caught.value.reply == POLICY_FAILED
    assert caught.value.reply.line() == "451 4.3.0 Policy evaluation failed, please retry"
    return str(caught.value)


def test_none_and_bare_settings_are_accepts():
    assert policy_decision_check(None) == PolicyAccept()
    assert policy_decision_check(SmtpSettings(campaign_id="x")) == PolicyAccept(settings=SmtpSettings(campaign_id="x"))


def test_momentum_style_strings_are_converted():
    decision = policy_decision_check(
        SmtpSettings(
            open_tracking="1",  # type: ignore[arg-type]
            click_tracking=" FALSE ",  # type: ignore[arg-type]
            transactional="true",  # type: ignore[arg-type]
            metadata='{"a": [1, 2]}',  # type: ignore[arg-type]
            tags='["x", "y"]',  # type: ignore[arg-type]
            link_expiry="86400",  # type: ignore[arg-type]
        )
    )
    assert isinstance(decision, PolicyAccept)
    assert decision.settings == SmtpSettings(
        open_tracking=True,
        click_tracking=False,
        transactional=True,
        metadata={"a": [1, 2]},
        tags=("x", "y"),
        link_expiry=86400,
    )


def test_values_follow_the_header_rules():
    decision = policy_decision_check(
        SmtpSettings(tags=tuple(f"t{i}" for i in range(12)), tracking_domain=" https://T.example:8443/ ")
    )
    assert isinstance(decision, PolicyAccept)
    assert decision.settings.tags == tuple(f"t{i}" for i in range(10))
    assert decision.settings.tracking_domain == "https://t.example:8443"


def test_a_policy_campaign_over_64_bytes_gets_momentums_reply():
    with pytest.raises(MsysApiError) as caught:
        policy_decision_check(SmtpSettings(campaign_id="c" * 65))
    assert caught.value.reply.line() == "550 5.6.0 smtpapi_campaign_id context is limited to 64 bytes"


@pytest.mark.parametrize(
    ("decision", "detail"),
    [
        ({"open_tracking": True}, "a policy returns None, SmtpSettings, PolicyAccept or PolicyReject, not dict"),
        ("reject", "not str"),
        (SmtpSettings(open_tracking="yes"), "settings.open_tracking must be a bool"),  # type: ignore[arg-type]
        (SmtpSettings(open_tracking=1), "settings.open_tracking must be a bool"),  # type: ignore[arg-type]
        (SmtpSettings(campaign_id=5), "settings.campaign_id must be a str"),  # type: ignore[arg-type]
        (SmtpSettings(campaign_id="a\x00"), "settings.campaign_id holds a NUL"),
        (SmtpSettings(metadata=[1]), "settings.metadata must be a mapping"),  # type: ignore[arg-type]
        (SmtpSettings(metadata="[1]"), "settings.metadata must be a JSON object"),  # type: ignore[arg-type]
        (SmtpSettings(metadata="{bad"), "metadata: JSON parsing error in X-MSYS-API"),  # type: ignore[arg-type]
        (SmtpSettings(metadata={"a": math.nan}), "metadata: JSON parsing error"),
        (SmtpSettings(metadata={"a": object()}), "metadata: JSON parsing error"),
        (SmtpSettings(tags="a"), "tags: JSON parsing error"),  # type: ignore[arg-type]
        (SmtpSettings(metadata={"a": "\ud800"}), "metadata: JSON parsing error in X-MSYS-API: a string holds a lone"),
        (SmtpSettings(metadata='{"\ud800": 1}'), "metadata: JSON parsing error in X-MSYS-API: a key holds a lone"),  # type: ignore[arg-type]
        (SmtpSettings(tags=("\ud800",)), "tags: JSON parsing error in X-MSYS-API: a string holds a lone"),
        (SmtpSettings(campaign_id="\ud800"), "settings.campaign_id holds a lone UTF-16 surrogate"),
        (SmtpSettings(tags=(1,)), "tags must be str of at most 64 characters"),  # type: ignore[arg-type]
        (SmtpSettings(tags={"a"}), "tags must be a sequence"),  # type: ignore[arg-type]
        (SmtpSettings(tracking_domain="http://x/path"), "settings.tracking_domain must be"),
        (SmtpSettings(tracking_domain=3), "settings.tracking_domain must be a str"),  # type: ignore[arg-type]
        (SmtpSettings(link_expiry=0), "settings.link_expiry must be whole seconds"),
        (SmtpSettings(link_expiry=True), "settings.link_expiry must be whole seconds"),
        (SmtpSettings(link_expiry="1.5"), "settings.link_expiry must be whole seconds"),  # type: ignore[arg-type]
        (PolicyAccept(settings=None), "settings must be an SmtpSettings, not NoneType"),  # type: ignore[arg-type]
        (PolicyAccept(per_recipient=[]), "per_recipient must be a mapping"),  # type: ignore[arg-type]
        (PolicyAccept(per_recipient={1: SmtpSettings()}), "per_recipient keys must be str"),  # type: ignore[dict-item]
        (PolicyAccept(per_recipient={"a@b.example": {"open_tracking": False}}), "must be an SmtpSettings, not dict"),  # type: ignore[dict-item]
        (PolicyReject(reply="550 no"), "PolicyReject.reply must be an SmtpReply, not str"),  # type: ignore[arg-type]
        (PolicyReject(reply=SmtpReply(250, "2.0.0", "OK")), "must be a 4xx or 5xx reply"),
    ],
)
def test_wrong_answers_are_451_with_a_detail_for_the_log(decision, detail):
    assert detail in _failure(decision)


def test_a_reply_of_the_policys_choosing_is_kept():
    reply = SmtpReply(550, "5.7.1", "Sending to this domain is not allowed")
    assert policy_decision_check(PolicyReject(reply)) == PolicyReject(reply)


def test_a_forged_reply_is_checked_again():
    reply = object.__new__(SmtpReply)
    for name, value in (("code", 550), ("enhanced", "5.7.1"), ("text", "bad\r\nline")):
        object.__setattr__(reply, name, value)
    assert "reply text must be printable ASCII" in _failure(PolicyReject(reply))


def test_checked_per_recipient_settings_are_read_only_and_keyed_by_address():
    decision = policy_decision_check(PolicyAccept(per_recipient={"Ann@EXAMPLE.com": SmtpSettings(open_tracking=False)}))
    assert isinstance(decision, PolicyAccept)
    assert list(decision.per_recipient) == ["Ann@example.com"]
    with pytest.raises(TypeError):
        decision.per_recipient["x"] = SmtpSettings()  # type: ignore[index]


def test_the_view_finds_headers_in_any_case():
    view = PolicyView(
        key_id=1,
        key_label="app",
        client_address="127.0.0.1",
        client_port=40000,
        helo="client.example",
        tls_version="TLSv1.3",
        mail_from="from@example.com",
        rcpt_to=("to@example.com",),
        headers=(("Subject", "Hi"), ("X-Tag", "a"), ("x-tag", "b")),
        msys_api=NO_HEADER,
        size=120,
    )
    assert view.header("subject") == "Hi"
    assert view.header("X-TAG") == "a"
    assert view.header_all("x-tag") == ("a", "b")
    assert view.header("missing") is None
    with pytest.raises(AttributeError):
        view.mail_from = "x"  # type: ignore[misc]
