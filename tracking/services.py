"""Engagement recording: what a verified tracking token hit becomes as events.

The views verify the token and call :func:`engagement_record`; it buffers the events with
``tracking.hitlog.hits_record``: a write to this process's hit log, shipped to Redis by a
background thread (else PostgreSQL's outbox, else kept on disk), so a hit that was answered is
never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from mailcore.events import LINK_POSITION, LINK_TEMPLATE_URL, hit_types
from mailcore.tokens import Decoded
from tracking.hitlog import hits_record


@dataclass(frozen=True, slots=True)
class Client:
    """Who hit the tracking URL: the fields engagement events carry about the client."""

    ip_address: str
    user_agent: str
    accept_language: str


def client_from_request(request: HttpRequest) -> Client:
    """The client of ``request``. The address is REMOTE_ADDR, or the first (client-most)
    X-Forwarded-For hop when ``ENGAGE_TRUST_X_FORWARDED_FOR`` says a proxy sets it."""
    meta = request.META
    ip = meta.get("REMOTE_ADDR", "")
    if settings.ENGAGE_TRUST_X_FORWARDED_FOR:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            ip = forwarded.split(",", 1)[0].strip() or ip
    return Client(
        ip_address=ip,
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        accept_language=meta.get("HTTP_ACCEPT_LANGUAGE", ""),
    )


def engagement_events(token: Decoded, client: Client) -> list[dict[str, Any]]:
    """The events one hit on ``token`` records: ``open``/``initial_open`` for pixels,
    ``click`` (plus ``link_unsubscribe`` for a ``data-msys-unsubscribe`` link) for links,
    ``list_unsubscribe`` for the List-Unsubscribe URL (``mailcore.events.hit_types``). Pure;
    timestamps and ids are assigned when enqueued."""
    base: dict[str, Any] = {
        **token.event_extra,  # first: never over a standard field
        "message_id": token.message_id,
        "transmission_id": token.transmission_id,
        "campaign_id": token.campaign_id or "",
        "template_id": token.template_id or "",
        "template_version": "" if token.template_version is None else str(token.template_version),
        "rcpt_to": token.rcpt_to,
        "raw_rcpt_to": token.rcpt_to,
        "rcpt_meta": token.rcpt_meta,
        "rcpt_tags": token.rcpt_tags,
        "transactional": token.transactional,
        "ip_address": client.ip_address,
        "user_agent": client.user_agent,
        "accept_language": client.accept_language,
    }
    if token.kind == "click":
        base["target_link_name"] = token.link_name or ""
        base["target_link_url"] = token.target_url or ""
        if token.link_position:  # Engage's own (docs/api-reference.md, "Events"): the link as written
            base[LINK_POSITION] = token.link_position
            base[LINK_TEMPLATE_URL] = token.link_written_url or ""
    types = hit_types(token.kind, unsubscribe=token.unsubscribe)
    return [{"type": event_type, **base} for event_type in types]


def engagement_record(*, token: Decoded, client: Client) -> None:
    """Record the events of one hit on a verified, unexpired ``token`` (see
    :func:`engagement_events`), durably whatever is down (``tracking.hitlog``)."""
    hits_record(engagement_events(token, client))
