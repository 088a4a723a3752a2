"""A message over ENGAGE_MAX_MESSAGE_BYTES fails alone with a generation_failure (issue 11)."""

from __future__ import annotations

from tests.transmissions.helpers import body, run
from transmissions.models import Message


def test_a_message_over_the_cap_fails_alone_naming_the_limit(api, relay, events, settings):
    settings.ENGAGE_MAX_MESSAGE_BYTES = 50_000
    recipients = [
        {"address": "ok@example.com", "substitution_data": {"big": ["x"]}},
        {"address": "big@example.com", "substitution_data": {"big": ["x" * 1000] * 30}},
    ]
    content = {"from": "news@sender.test", "subject": "Hi", "text": "t",
               "headers": {f"X-Loop-{i}": "{{each big}}{{loop_var}}{{end}}" for i in range(5)}}  # fmt: skip
    transmission = run(api, body(recipients=recipients, content=content))
    assert [r.rcpt_tos[0] for r in relay.received] == ["ok@example.com"]
    states = dict(Message.objects.filter(transmission_id=transmission.id).values_list("email", "state"))
    assert states == {"ok@example.com": "delivered", "big@example.com": "generation_failed"}
    [failure] = [e for e in events() if e["type"] == "generation_failure"]
    assert failure["rcpt_to"] == "big@example.com"
    assert "50000 bytes" in failure["reason"]


def test_a_part_sent_without_substitution_counts_against_the_message_budget_too():
    """``perform_substitutions: false`` bodies (LiteralPart) take the same budget as rendered ones."""
    import pytest as _pytest

    from mailcore.language import MessageTooLarge
    from mailcore.rfc822 import LiteralPart

    part = LiteralPart("x" * 100, part="text", html=False)
    assert part.render({}, budget=100) == "x" * 100
    with _pytest.raises(MessageTooLarge):
        part.render({}, budget=99)
