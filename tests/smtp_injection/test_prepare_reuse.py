"""What the listener makes once and reuses across messages (the ``Received:`` line of a
session's second, the parse of an ``X-MSYS-API`` value: bench/RESULTS.md, "Session 20")
never leaks from one message into another: each message gets its own session's line and
date, its own metadata to change, and a refused header is refused every time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from smtp_injection.services import (
    MSYS_API_CACHED_CHARS,
    Injection,
    SmtpPrincipal,
    SmtpRefusal,
    smtp_message_prepare,
    smtp_message_read,
)
from tests.smtp_injection.helpers import message

NOW = datetime(2026, 12, 1, 23, 0, 0, 250_000, tzinfo=UTC)


def _injection(data: str, *, helo: str = "app.example.com", label: str = "billing", address: str = "10.0.0.1",
               tls: bool = True) -> Injection:  # fmt: skip
    return Injection(
        principal=SmtpPrincipal(key_id=1, label=label), listener_hostname="smtp.engage.test", client_address=address,
        helo=helo, tls=tls, mail_from="bounce@sender.example.com", rcpt_tos=("jo@example.com",), data=data.encode(),
    )  # fmt: skip


def _received(injection: Injection, now: datetime) -> str:
    """The stored source's first field, unfolded (RFC 5322 §2.2.3)."""
    source = smtp_message_prepare(injection=injection, now=now).transmission.content["email_rfc822"]
    lines = source.split("\r\n")
    field = [lines[0], *itertools.takewhile(lambda line: line[:1] in (" ", "\t"), lines[1:])]
    return "".join(field)


def test_each_message_gets_its_own_sessions_received_line_and_second():
    first = _received(_injection(message()), NOW)
    assert "from app.example.com ([10.0.0.1])" in first and "key billing" in first and "ESMTPSA" in first
    assert first.endswith("23:00:00 +0000")
    assert _received(_injection(message()), NOW + timedelta(microseconds=500_000)) == first  # the same second
    for other, expected in (
        ({"helo": "other.example.com"}, "from other.example.com ("),
        ({"label": "marketing"}, "key marketing"),
        ({"address": "10.0.0.2"}, "([10.0.0.2])"),
        ({"tls": False}, "with ESMTPA;"),
    ):
        line = _received(_injection(message(), **other), NOW)
        assert expected in line and line != first, (other, line)
    assert _received(_injection(message()), NOW + timedelta(seconds=1)).endswith("23:00:01 +0000")


def test_each_message_gets_its_own_metadata_and_a_bad_header_is_refused_every_time():
    header = {"campaign_id": "invoices", "metadata": {"customer": "42"}, "tags": ["billing"]}
    first = smtp_message_prepare(injection=_injection(message(header)), now=NOW).transmission
    first.metadata["customer"] = "changed by the first message's owner"
    first.options["open_tracking"] = "changed"
    second = smtp_message_prepare(injection=_injection(message(header)), now=NOW).transmission
    assert second.metadata == {"customer": "42"} and second.campaign_id == "invoices"
    assert second.options["open_tracking"] is False
    for _ in range(3):
        with pytest.raises(SmtpRefusal) as refused:
            smtp_message_read(_injection(message('{"campaign_id": "x", "metadata": []}')))
        assert refused.value.reply.startswith("550 5.6.0"), refused.value.reply


def test_a_header_too_long_to_keep_is_read_all_the_same():
    header = {"campaign_id": "long", "metadata": {"blob": "x" * MSYS_API_CACHED_CHARS}}
    for _ in range(2):
        api = smtp_message_read(_injection(message(header)))
        assert api.campaign_id == "long" and dict(api.metadata) == {"blob": "x" * MSYS_API_CACHED_CHARS}
