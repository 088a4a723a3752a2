"""Helpers shared by the console's tests: a generated event set that falls around the last
24 hours and the figures the overview shows read back from its HTML; messages for the sink's
tests, generated and kept the way the sink keeps what it receives; messages with known stories
for the message search, landed as events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.test import Client
from django.utils import timezone

from console.forms import submission_token
from console.selectors import send_data_missing, send_empty_confirmation
from console.sink_mailbox import Mailbox
from tests.analytics import data
from tests.transmissions.helpers import URL as API
from tests.transmissions.helpers import body


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


#: ``<meta http-equiv=refresh>`` as a browser reads it, written to slip past a filter (found by
#: an attacker): an entity in the value, ``>`` inside a quoted value before ``http-equiv``, a
#: tag that a removal would join, case, white space, ``/`` for a space, the attributes swapped.
REFRESH_VARIANTS = (
    '<META HTTP-EQUIV="REFRESH" CONTENT="0;URL={url}">',
    '<meta content="0;url={url}" http-equiv="refresh">',
    '<meta http-equiv="&#114;efresh" content="0;url={url}">',
    '<meta content="0;url={url}" title="a>b" http-equiv="refresh">',
    "<me<meta http-equiv=refresh>ta http-equiv=refresh content=0;url={url}>",
    "<meta\n\thttp-equiv = refresh\ncontent=0;url={url}>",
    '<meta/http-equiv=refresh/content="0;url={url}">',
)


def sink_fill(directory: Path, count: int) -> list[str]:
    """Deliver messages 0 .. count-1 to the sink's mailbox in ``directory``, oldest first;
    returns their file names in that order."""
    names = []
    with Mailbox(directory) as mailbox:
        for i in range(count):
            rcpt, message = sink_message(i)
            names.append(mailbox.deliver(mail_from="bounces@example.com", rcpt_tos=[rcpt], data=message))
    return names


# --- the message search's stories ---------------------------------------------------------
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
    data.land([event for events in stories for event in events], shuffle=True)


def hours_ago(hours: float) -> datetime:
    return timezone.now() - timedelta(hours=hours)


def types_shown(html: str, message_id: str) -> list[str]:
    """The event types of one message's timeline on the page, in the order shown."""
    section = html.split(f'data-message-id="{message_id}"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<li class="[^"]*" data-type="([a-z_]+)"', section)


def messages_shown(html: str) -> list[str]:
    return re.findall(r'data-message-id="([^"]+)"', html)


# --- the send page and transmissions (tests/console/test_send*.py, test_permissions.py) ---
#: The send page and the template content its tests send.
SEND_PAGE = "/transmissions/new/"
CONTENT = {
    "from": {"email": "shop@example.com", "name": "Shop"},
    "subject": "Hi {{name}}",
    "html": '<p>Hi {{name}}</p><a href="https://example.com/offer">offer</a>',
    "text": "Hi {{name}}",
}


def send_form(**overrides: str) -> dict[str, str]:
    data = {
        "template": "promo", "recipient_list": "friends", "addresses": "", "campaign_id": "spring",
        "description": "from the console", "open_tracking": "", "click_tracking": "", "transactional": "",
        "start_date": "", "start_time": "", "submission": submission_token(),
    }  # fmt: skip
    data.update(overrides)
    return data


def send_empty_for(template_id: str, addresses: str) -> str:
    """The "Send with them empty" box's value for ``template_id`` and the typed ``addresses``
    (one a line), as the send page gives it when it asks (a person ticking it)."""
    lines = [line.strip() for line in addresses.splitlines() if line.strip()]
    missing = send_data_missing(template_id=template_id, addresses=lines)
    return send_empty_confirmation(template_id=template_id, missing=missing)


def created_id(response) -> int:
    assert response.status_code == 303, response.content.decode()[:3000]
    found = re.fullmatch(r"/transmissions/([0-9]+)/", response["Location"])
    assert found, response["Location"]
    return int(found[1])


def errors_shown(response) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))


def rendered_form(client: Client) -> dict[str, str]:
    """What the browser sends after filling the rendered form: its hidden token kept."""
    html = client.get(SEND_PAGE).content.decode()
    token = re.search(r'<input type="hidden" name="submission" value="([^"]+)"', html)
    assert token, html[:3000]
    # CONTENT reads {{name}}, which a typed address does not supply: confirmed, as a person would
    # (the question itself: tests/console/test_send_missing_data.py)
    return {"template": "promo", "addresses": "ann@example.com", "send_empty": send_empty_for("promo", "ann@example.com"),
            "submission": token[1]}  # fmt: skip


def create(api, **overrides) -> int:
    response = api.post(API, body(**overrides), format="json")
    assert response.status_code == 200, response.content
    return int(response.json()["results"]["id"])


def scheduled(api, *, hours: float = 2, **overrides) -> int:
    later = (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")
    return create(api, options={"start_time": later}, **overrides)
