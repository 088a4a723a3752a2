"""Helpers shared by the console's tests: a generated event set that falls around the last
24 hours, and the figures the overview shows read back from its HTML."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

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
