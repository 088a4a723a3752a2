"""Reads for the console's pages (issue 15), made from the selectors of the apps below it.

- :func:`message_timelines`: the message search (``/messages/``), the events search's
  filters (``analytics.search``) answered per message, each message as a timeline.
- :func:`transmission_summary`: a transmission as ``GET /api/v1/transmissions/{id}`` shows
  it, with the count of its events per type.
- :func:`getting_started`: what a newcomer has done of the overview's first steps.
- :func:`send_token_used`, :func:`send_recent_duplicate`: what the send page knows of the
  forms it already sent (``console.models.SendSubmission``).
- :func:`template_data_missing`, :func:`send_data_missing`: what a template reads that a
  test send's sample data, or the send page's typed addresses, do not supply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from analytics.search import EventQuery
from analytics.selectors import event_counts, message_events, message_search
from analytics.serialize import event_flat
from console.models import SendSubmission
from engage import errors
from mailcore.addresses import split_address
from mailcore.bounces import bounce_class_text
from mailcore.cursors import cursor_encode
from mailcore.events import CATEGORIES, NAMES
from mailcore.ids import TEST_SEND_CAMPAIGN
from recipient_lists.selectors import recipient_list_list
from templates_app.models import Template
from templates_app.rendering import content_render_preview
from templates_app.selectors import template_get, template_list, template_version
from transmissions.selectors import transmission_detail, transmission_exists, transmission_template_id

#: How long a send is remembered as "just sent": the same send again by the same user within
#: it is asked about first (``console.views.transmission_new``).
RESEND_WINDOW = timedelta(minutes=10)

#: Events shown per message; a message with more (a link clicked a thousand times) says so.
TIMELINE_LIMIT = 200
# A message's story in the order it happens when two events share a time (the injection and
# the relay's answer are written by one statement): injection, the relay's answer or the
# failure, opens, clicks, unsubscribes, then anything else (a complaint).
_STAGES = {"message_event": 1, "gen_event": 1, "track_event": 2, "unsubscribe_event": 4}
# Types that are no answer about the message's delivery, though of those categories.
_NOT_AN_OUTCOME = frozenset({"injection", "spam_complaint"})
# The answers that are no failure (the rest of stage 1 is: a bounce, a rejection, ...).
_NOT_A_FAILURE = frozenset({"injection", "delivery", "delay"})
# Within one stage, the event that comes first when two share a second: the initial open
# (its pixel is at the top of the body) before the open (at the bottom), whichever pixel the
# mail client happened to load first.
_FIRST_IN_STAGE = frozenset({"initial_open", "amp_initial_open"})
#: The badge of a message's delivery outcome (the relay's last answer or the failure).
OUTCOME_WORDS = {
    "delivery": "Delivered",
    "bounce": "Bounced",
    "out_of_band": "Bounced (out of band)",
    "delay": "Delayed",
    "generation_failure": "Generation failed",
    "generation_rejection": "Rejected",
    "policy_rejection": "Rejected",
}
# What a message's engagement events say, in the order they are said.
_ENGAGED = (
    ("opened", ("initial_open", "open", "amp_initial_open", "amp_open")),
    ("clicked", ("click", "amp_click")),
    ("unsubscribed", ("list_unsubscribe", "link_unsubscribe")),
)


def _stage(kind: str) -> int:
    if kind == "injection":
        return 0
    if kind == "click":
        return 3
    return _STAGES.get(CATEGORIES.get(kind, ""), 5)


def label(kind: str) -> str:
    """An event type in words: ``initial_open`` → ``Initial open``."""
    return kind.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Timeline:
    """One message: what every event of it says in common, and its events in order.

    ``events`` are ``analytics.serialize.event_flat`` dicts (the events API's fields, so
    ``raw_reason`` of a bounce or delay is there) with ``at`` (the aware datetime), ``label``,
    ``stage`` (0 injection, 1 the relay's answer or a failure, 2 opens, 3 clicks, 4
    unsubscribes, 5 others), ``failed`` (a bounce, rejection or failure) and
    ``bounce_class_text`` (``mailcore.bounces.bounce_class_text``) added. ``outcome`` is the
    type of the relay's last answer or failure (``delivery``, ``bounce``, ``delay``,
    ``generation_failure``, ...), "" before one."""

    message_id: str
    rcpt_to: str
    subject: str
    friendly_from: str
    campaign_id: str
    template_id: str
    transmission_id: str
    outcome: str
    events: list[dict[str, Any]]
    total: int  # events stored; more than len(events) when cut at TIMELINE_LIMIT
    recv_method: str = ""  # "esmtp" for a message that came in by SMTP injection (SMTP-INJECTION.md §1.7)
    #: The recipient's metadata and tags as its events carry them (``rcpt_meta``, ``rcpt_tags``):
    #: a REST recipient's, or an SMTP injection's from its X-MSYS-API header.
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @property
    def metadata_text(self) -> str:
        """The metadata as compact JSON, cut to 300 characters for the page."""
        text = json.dumps(self.metadata, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)
        return text if len(text) <= 300 else text[:299] + "…"

    @property
    def outcome_label(self) -> str:
        """The delivery outcome in words (``Delivered``, ``Bounced``, ...), "" before one."""
        return OUTCOME_WORDS.get(self.outcome, label(self.outcome)) if self.outcome else ""

    @property
    def engagement(self) -> str:
        """What the recipient did, apart from the outcome: ``"opened, clicked"``, or ""."""
        kinds = {event["type"] for event in self.events}
        return ", ".join(word for word, types in _ENGAGED if kinds.intersection(types))


@dataclass(frozen=True)
class MessagePage:
    """A page of the message search: ``messages``, newest first by their newest matching
    event; ``total`` messages match in the window; ``next_cursor`` for the next page (the
    events API's cursor format) or None on the last."""

    query: EventQuery
    messages: list[Timeline] = field(default_factory=list)
    total: int = 0
    next_cursor: str | None = None


def timeline(rows: list[dict[str, Any]], *, total: int | None = None) -> Timeline:
    """PURE: the timeline of one message from its event rows (any order; at least one):
    ordered by the second they happened (the page shows seconds), then by stage (injection,
    answer, initial open, opens, clicks, unsubscribes), then by time and id. The events API
    orders by time and id alone (its keyset cursor); the two differ only within a second."""

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        second = row["timestamp"].replace(microsecond=0)
        kind = row["type"]
        return (second, _stage(kind), kind not in _FIRST_IN_STAGE, row["timestamp"], row.get("id", 0))

    ordered = sorted(rows, key=order)
    events = [
        {
            **event_flat(row),
            "at": row["timestamp"],
            "label": label(row["type"]),
            "stage": _stage(row["type"]),
            "failed": _stage(row["type"]) == 1 and row["type"] not in _NOT_A_FAILURE,
            "bounce_class_text": bounce_class_text(row.get("bounce_class") or ""),
        }
        for row in ordered
    ]
    answers = [row["type"] for row in ordered if _stage(row["type"]) == 1 and row["type"] not in _NOT_AN_OUTCOME]

    def first(name: str) -> str:
        return next((str(row[name]) for row in ordered if row.get(name)), "")

    return Timeline(
        message_id=ordered[0]["message_id"],
        rcpt_to=first("rcpt_to"),
        subject=first("subject"),
        friendly_from=first("friendly_from"),
        campaign_id=first("campaign_id"),
        template_id=first("template_id"),
        transmission_id=first("transmission_id"),
        outcome=answers[-1] if answers else "",
        events=events,
        total=len(rows) if total is None else total,
        recv_method=next((str(event["recv_method"]) for event in events if event.get("recv_method")), ""),
        metadata=next((event["rcpt_meta"] for event in events if isinstance(event.get("rcpt_meta"), dict)
                       and event["rcpt_meta"]), {}),
        tags=next(([str(tag) for tag in event["rcpt_tags"]] for event in events
                   if isinstance(event.get("rcpt_tags"), list) and event["rcpt_tags"]), []),
    )  # fmt: skip


def message_timelines(*, query: EventQuery) -> MessagePage:
    """The messages with an event matching ``query`` (``console.queries.message_query``),
    ``query.per_page`` of them after ``query.after``, each with all its events (at most
    ``TIMELINE_LIMIT``), whenever they happened. Three queries."""
    found, total, more = message_search(query=query)
    stored = message_events(message_ids=[row["message_id"] for row in found], limit=TIMELINE_LIMIT)
    messages = [
        timeline(stored[row["message_id"]][0], total=stored[row["message_id"]][1])
        for row in found
        if row["message_id"] in stored  # gone meanwhile (retention dropped its day)
    ]
    cursor = cursor_encode(found[-1]["timestamp"], found[-1]["id"]) if more and found else None
    return MessagePage(query=query, messages=messages, total=total, next_cursor=cursor)


def transmission_summary(*, transmission_id: int) -> dict[str, Any]:
    """``{"transmission": <the API's results.transmission, SPEC B §1.7>, "template_id": <as
    its events carry it: smtp_<id> for an SMTP injection, "inline" for inline content>,
    "events": [(type, label, count), ...]}``: every known event type in ``mailcore.events``
    order, with the number of the transmission's stored events of that type (types with none
    left out). Errors: ``engage.errors.NotFound`` (1600) as the API."""
    transmission = transmission_detail(transmission_id=transmission_id)
    counts = event_counts(transmission_id=str(transmission_id))
    return {
        "transmission": transmission,
        "template_id": transmission_template_id(transmission_id=transmission_id) or "inline",
        "events": [(kind, label(kind), counts[kind]) for kind in NAMES if counts.get(kind)],
    }


def send_token_used(*, token: str) -> bool:
    """Whether the send form ``token`` already created a transmission (or is creating one)."""
    return SendSubmission.objects.filter(token=token).exists()


@dataclass(frozen=True)
class EarlierSend:
    """A transmission the same user created with the same send (its id, when)."""

    transmission_id: int
    created_at: datetime


def send_recent_duplicate(*, user_id: int | None, fingerprint: str, now: datetime) -> EarlierSend | None:
    """The newest transmission that ``user_id`` sent from the send page with the same
    ``fingerprint`` (``console.forms.send_fingerprint``: template, list or typed addresses,
    campaign) less than :data:`RESEND_WINDOW` before ``now`` (aware), or None (always for no
    user)."""
    if user_id is None:
        return None
    row = (
        SendSubmission.objects.filter(
            user_id=user_id,
            fingerprint=fingerprint,
            transmission_id__isnull=False,
            created_at__gte=now - RESEND_WINDOW,
        )
        .order_by("-created_at")
        .values_list("transmission_id", "created_at")
        .first()
    )
    return EarlierSend(transmission_id=row[0], created_at=row[1]) if row and row[0] is not None else None


@dataclass(frozen=True)
class GettingStarted:
    """The overview's first steps (``console/overview.html``), each True once done: a published
    ``template``, a ``recipient_list``, and a ``sent`` transmission other than a test send."""

    template: bool
    recipient_list: bool
    sent: bool


def getting_started(*, recent_campaigns: list[str]) -> GettingStarted:
    """:class:`GettingStarted` as it stands now. ``recent_campaigns``: the campaigns of the
    newest transmissions, already read by the caller (none: nothing was sent; one that is not
    ``TEST_SEND_CAMPAIGN``: something real was), so transmissions are asked about only when
    every recent one was a test send. Two or three queries."""
    sent = any(campaign != TEST_SEND_CAMPAIGN for campaign in recent_campaigns) or (
        bool(recent_campaigns) and transmission_exists(excluding_campaign=TEST_SEND_CAMPAIGN)
    )
    return GettingStarted(
        template=template_list(draft=False).exists(), recipient_list=recipient_list_list().exists(), sent=sent
    )


def template_data_missing(
    *, template: Template, draft: bool, substitution_data: dict, address: dict | None = None
) -> list[str]:
    """The names the template's draft (``draft``, else its published version) reads that
    ``substitution_data`` and the recipient ``address`` (``{"email", "name"}``, None:
    anonymous) lack, in the order first read: rendered empty (``content_render_preview``'s
    ``missing``, the template editor's warning). ``[]`` when that version does not render
    (the send says why)."""
    missing: list[str] = []
    try:
        _published, content, _options, _number, _updated = template_version(template, draft=draft)
        content_render_preview(content, substitution_data=substitution_data, address=address, missing=missing)
    except errors.EngageError:
        return []
    return missing


def send_empty_confirmation(*, template_id: str, missing: list[str]) -> str:
    """What the send page's "Send with them empty" box carries (``SendForm.send_empty``): tied
    to the template and the names it was asked about, so a form whose template or names
    changed since it was ticked is asked again (an attacker's finding: the box ticked for one
    template sent another, through a form shown again after another error). Not a secret: it
    says what was shown, to the user who was shown it."""
    shown = json.dumps([template_id, sorted(missing)], ensure_ascii=True)
    return "empty-" + hashlib.sha256(shown.encode("ascii")).hexdigest()[:20]


def send_data_missing(*, template_id: str, addresses: list[str]) -> list[str]:
    """What the published version of ``template_id`` reads that none of the typed
    ``addresses`` (``Ada <ada@example.com>`` or ``ada@example.com``, one or more) supplies:
    they carry no substitution data, so every name it reads is empty for all of them;
    ``address.name`` only when none has a display name. ``[]`` for an unknown template."""
    try:
        template = template_get(template_id=template_id)
    except errors.NotFound:
        return []
    parsed = [split_address(line) for line in addresses]
    name = next((name.strip() for name, _email in parsed if name and name.strip()), "")
    address = {"email": parsed[0][1] if parsed else "", "name": name}
    return template_data_missing(template=template, draft=False, substitution_data={}, address=address)
