"""Shared helpers of the console's tests: messages with known stories, landed as events."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.utils import timezone

from tests.analytics.data import land

BOUNCE_RAW = "550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown"
DELAY_RAW = "451 4.7.1 Greylisted, try again in 5 minutes"


def story(message_id: str, rcpt: str, at: datetime, *, kinds: tuple[str, ...], **fields: object) -> list[dict]:
    """One message's events, a minute apart from ``at`` in the order of ``kinds``; the
    injection and the relay's first answer share a time, as the send path writes them."""
    common = {
        "message_id": message_id, "transmission_id": "4242", "campaign_id": "spring", "template_id": "tpl-a",
        "rcpt_to": rcpt, "raw_rcpt_to": rcpt, "friendly_from": "News <news@sender.example>", "subject": "Hello",
        **fields,
    }  # fmt: skip
    details = {
        "delay": {"reason": "451 4.7.1 Greylisted", "raw_reason": DELAY_RAW, "error_code": "451", "bounce_class": "70"},
        "bounce": {"reason": "550 5.1.1 User unknown", "raw_reason": BOUNCE_RAW, "error_code": "550", "bounce_class": "10"},
        "delivery": {"ip_address": "127.0.0.1"},
        "open": {"user_agent": "Mail/1.0", "ip_address": "198.51.100.7"},
        "click": {"target_link_name": "offer", "target_link_url": "https://shop.example.com/offer", "user_agent": "Mail/1.0"},
        "generation_failure": {"reason": "substitution error", "raw_reason": "substitution error", "error_code": "1902"},
    }  # fmt: skip
    events, when = [], at
    for number, kind in enumerate(kinds):
        if number > 1 or (number == 1 and kinds[0] != "injection"):
            when = when + timedelta(minutes=1)
        events.append({
            "event_id": f"{message_id}-{number}", "type": kind, "timestamp": when, **common, **details.get(kind, {}),
        })  # fmt: skip
    return events


def land_stories(*stories: list[dict]) -> None:
    land([event for events in stories for event in events], shuffle=True)


def hours_ago(hours: float) -> datetime:
    return timezone.now() - timedelta(hours=hours)


def types_shown(html: str, message_id: str) -> list[str]:
    """The event types of one message's timeline on the page, in the order shown."""
    section = html.split(f'data-message-id="{message_id}"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<li class="[^"]*" data-type="([a-z_]+)"', section)


def messages_shown(html: str) -> list[str]:
    return re.findall(r'data-message-id="([^"]+)"', html)
