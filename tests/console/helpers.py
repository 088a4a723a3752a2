"""Helpers shared by the console's tests: a generated event set that falls around the last
24 hours and the figures the overview shows read back from its HTML; messages for the sink's
tests, generated and kept the way the sink keeps what it receives."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from console.sink_mailbox import Mailbox
from tests.analytics import data


def recent_events(now: datetime, *, messages: int = 240) -> list[dict]:
    """``tests.analytics.data.generate``'s events moved so they start 40 hours before ``now``:
    some fall before the overview's window, most inside it, a few after ``now``."""
    shift = now - timedelta(hours=40) - data.START
    return [{**event, "timestamp": event["timestamp"] + shift} for event in data.generate(messages=messages, days=2)]


def shown_window(html: str) -> tuple[str, str]:
    """The ``from`` and ``to`` (API format) the overview says it counted."""
    found = re.search(r'id="window" data-from="([^"]+)" data-to="([^"]+)"', html)
    assert found, html[:2000]
    return found[1], found[2]


#: A tracked link as long as the ones Engage writes (a signed token of ~340 characters).
LONG_URL = "http://127.0.0.1:8001/f/" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_" * 9  # no "-" to break at


def sink_message(i: int, *, html: str | None = None, message_id: str | None = None) -> tuple[str, bytes]:
    """(envelope recipient, message bytes) of message ``i``, as Engage writes one: to
    ``user<i>@example.org``, subject ``Order <i> shipped`` (every 10th ``Password reset
    <i>``), Message-ID ``<i as 20 hex digits@example.com>``, a List-Unsubscribe header, a text
    and an HTML part, each with a long tracked link. Written by hand, not with ``email``: a thousand are made per test."""
    rcpt = f"user{i}@example.org"
    subject = f"Password reset {i}" if i % 10 == 0 else f"Order {i} shipped"
    html = html or f'<p>Hello user {i}</p><p><a href="{LONG_URL}">Track</a></p>'
    message = (
        f"From: Shop <shop@example.com>\r\nTo: User {i} <{rcpt}>\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id or f'<{i:020x}@example.com>'}\r\nList-Unsubscribe: <{LONG_URL}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        f"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello user {i}, track it at {LONG_URL}\r\n"
        f"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n"
    )
    return rcpt, message.encode()


def sink_fill(directory: Path, count: int) -> list[str]:
    """Deliver messages 0 .. count-1 to the sink's mailbox in ``directory``, oldest first;
    returns their file names in that order."""
    names = []
    with Mailbox(directory) as mailbox:
        for i in range(count):
            rcpt, message = sink_message(i)
            names.append(mailbox.deliver(mail_from="bounces@example.com", rcpt_tos=[rcpt], data=message))
    return names
