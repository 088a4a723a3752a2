"""SMTP precedence: policy > X-MSYS-API > listener, field by field (SPEC A.4, B §9.2;
SMTP-INJECTION.md §5.7, §5.11 item 10)."""

from __future__ import annotations

import itertools

import pytest

from mailcore.msys_api import msys_api_parse
from mailcore.smtp_policy import PolicyAccept, policy_decision_check
from mailcore.smtp_settings import (
    HEADER_FIELDS,
    POLICY_ONLY_FIELDS,
    HeaderSettings,
    ResolvedSmtpSettings,
    SmtpSettings,
    smtp_settings_resolve,
)

# Two distinct values per field and level, so the table can tell which level won.
VALUES = {
    "campaign_id": ("policy-campaign", "header-campaign", "listener-campaign"),
    "metadata": ({"from": "policy"}, {"from": "header"}, {"from": "listener"}),
    "tags": (("policy",), ("header",), ("listener",)),
    "open_tracking": (True, False, True),
    "click_tracking": (False, True, False),
    "transactional": (True, False, True),
    "tracking_domain": ("policy.example", "header.example", "listener.example"),
    "link_expiry": (60, 120, 180),
    "initial_open": (False, True, True),
}
UNSET_DEFAULTS = ResolvedSmtpSettings(campaign_id=None)
SET_UNSET = list(itertools.product((True, False), repeat=3))


def _levels(name: str, policy_set: bool, header_set: bool, listener_set: bool):
    policy_value, header_value, listener_value = VALUES[name]
    policy = SmtpSettings(**({name: policy_value} if policy_set else {}))
    # The header level is an SmtpSettings here on purpose: its policy-only fields must be ignored.
    header = SmtpSettings(**({name: header_value} if header_set else {}))
    listener = SmtpSettings(**({name: listener_value} if listener_set else {}))
    return policy, header, listener


def _expected(name: str, policy_set: bool, header_set: bool, listener_set: bool):
    policy_value, header_value, listener_value = VALUES[name]
    header_counts = name in HEADER_FIELDS
    for is_set, value in (
        (policy_set, policy_value),
        (header_set and header_counts, header_value),
        (listener_set, listener_value),
    ):
        if is_set:
            return value
    return getattr(UNSET_DEFAULTS, name)


@pytest.mark.parametrize("name", HEADER_FIELDS + POLICY_ONLY_FIELDS)
@pytest.mark.parametrize(("policy_set", "header_set", "listener_set"), SET_UNSET)
def test_each_field_comes_from_the_highest_level_that_gives_it(name, policy_set, header_set, listener_set):
    policy, header, listener = _levels(name, policy_set, header_set, listener_set)
    if name == "initial_open":  # no top pixel without open tracking: turn it on at the bottom level
        listener = SmtpSettings(open_tracking=True, initial_open=listener.initial_open)
    resolved = smtp_settings_resolve(policy, header, listener)
    assert getattr(resolved, name) == _expected(name, policy_set, header_set, listener_set)
    others = {field: getattr(resolved, field) for field in VALUES if field not in (name, "open_tracking")}
    assert others == {field: getattr(UNSET_DEFAULTS, field) for field in others}


def test_nothing_given_anywhere_is_smtp_tracking_off_and_not_transactional():
    resolved = smtp_settings_resolve(SmtpSettings(), HeaderSettings(), SmtpSettings())
    assert resolved == ResolvedSmtpSettings(
        campaign_id=None,
        metadata={},
        tags=(),
        open_tracking=False,
        click_tracking=False,
        transactional=False,
        initial_open=False,
        tracking_domain=None,
        link_expiry=None,
    )


def test_initial_open_is_off_without_open_tracking_whoever_asks():
    resolved = smtp_settings_resolve(
        SmtpSettings(initial_open=True), HeaderSettings(open_tracking=False), SmtpSettings()
    )
    assert resolved.initial_open is False


def test_empty_tags_and_metadata_given_by_the_header_replace_the_listeners():
    resolved = smtp_settings_resolve(
        SmtpSettings(), HeaderSettings(tags=()), SmtpSettings(tags=("listener",), metadata={"a": 1})
    )
    assert resolved.tags == ()
    assert resolved.metadata == {"a": 1}  # taken whole, never merged


def test_policy_sets_tracking_domain_and_turns_open_tracking_off_against_a_header_that_turns_it_on():
    api = msys_api_parse(['{"campaign_id": "hdr", "options": {"open_tracking": true, "click_tracking": true}}'])

    def policy(view: object) -> PolicyAccept:
        return PolicyAccept(settings=SmtpSettings(tracking_domain="Click.Example.COM", open_tracking="0"))  # type: ignore[arg-type]

    decision = policy_decision_check(policy(None))
    assert isinstance(decision, PolicyAccept)
    listener = SmtpSettings(open_tracking=False, click_tracking=False, tracking_domain="", link_expiry=31536000)
    resolved = smtp_settings_resolve(
        decision.settings_for("to@example.com"), HeaderSettings.from_msys_api(api), listener
    )
    assert resolved.tracking_domain == "click.example.com"
    assert resolved.open_tracking is False
    assert resolved.click_tracking is True  # the header's, where the policy is silent
    assert resolved.campaign_id == "hdr"
    assert resolved.link_expiry == 31536000


def test_per_recipient_policy_resolves_with_the_same_function():
    header = HeaderSettings(campaign_id="hdr", open_tracking=True)
    decision = policy_decision_check(
        PolicyAccept(
            settings=SmtpSettings(campaign_id="policy"),
            per_recipient={"VIP@Example.com": SmtpSettings(open_tracking=False, tracking_domain="vip.example")},
        )
    )
    assert isinstance(decision, PolicyAccept)
    listener = SmtpSettings()
    vip = smtp_settings_resolve(decision.settings_for("VIP@example.COM"), header, listener)
    other = smtp_settings_resolve(decision.settings_for("other@example.com"), header, listener)
    assert (vip.campaign_id, vip.open_tracking, vip.tracking_domain) == ("policy", False, "vip.example")
    assert (other.campaign_id, other.open_tracking, other.tracking_domain) == ("policy", True, None)


def test_header_settings_come_from_the_parsed_header():
    api = msys_api_parse(
        ['{"campaign_id": "c", "metadata": {"a": 1}, "tags": ["t"], "options": {"open_tracking": false, '
         '"click_tracking": true, "transactional": true, "inline_css": true}}']
    )  # fmt: skip
    assert HeaderSettings.from_msys_api(api) == HeaderSettings(
        campaign_id="c", metadata={"a": 1}, tags=("t",), open_tracking=False, click_tracking=True, transactional=True
    )
