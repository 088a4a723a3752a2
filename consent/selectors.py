"""Reads of the tracking consent register (SPEC A.5). ``consent_among`` is the contract with
generation and the lander: one statement per batch of addresses, never one per address."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models.expressions import RawSQL

from consent.models import Consent, TrackingConsent
from engage import errors
from mailcore.addresses import mailbox_key

_TABLE = TrackingConsent._meta.db_table
_CURRENT_AMONG = f"""
    SELECT DISTINCT ON (recipient) recipient, consent FROM {_TABLE}
     WHERE recipient = ANY(%s) ORDER BY recipient, recorded_at DESC, id DESC"""
_HISTORY_AMONG = f"""
    SELECT recipient, recorded_at, consent FROM {_TABLE}
     WHERE recipient = ANY(%s) ORDER BY recipient, recorded_at, id"""
_CURRENT = f"""
    SELECT * FROM (SELECT DISTINCT ON (recipient) id FROM {_TABLE}
                    ORDER BY recipient, recorded_at DESC, id DESC) AS latest"""


def consent_among(*, addresses: Iterable[str]) -> dict[str, str]:
    """The current consent (``"granted"`` / ``"denied"``) of each of ``addresses`` (any
    spelling) that is in the register, keyed by its ``mailbox_key``; absent ones are left out.
    One statement (the ``(recipient, recorded_at, id)`` index), whatever the count."""
    keys = list({mailbox_key(address) for address in addresses})
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_CURRENT_AMONG, [keys])
        return {recipient: consent for recipient, consent in cursor.fetchall()}


def consent_denied_among(*, addresses: Iterable[str]) -> set[str]:
    """The ``mailbox_key`` of each of ``addresses`` whose current consent is ``denied`` (one statement)."""
    return {key for key, value in consent_among(addresses=addresses).items() if value == Consent.DENIED}


def consent_timelines(*, addresses: Iterable[str]) -> dict[str, list[tuple[datetime, str]]]:
    """Each of ``addresses`` (any spelling) that is in the register, keyed by its
    ``mailbox_key``: its records as ``(recorded_at, consent)``, oldest first (of two at one
    instant, the later id last), for ``mailcore.consent.consent_at``. One statement (the
    ``(recipient, recorded_at, id)`` index); the rows are the history of those addresses only."""
    keys = list({mailbox_key(address) for address in addresses})
    if not keys:
        return {}
    timelines: dict[str, list[tuple[datetime, str]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_AMONG, [keys])
        for recipient, recorded_at, consent in cursor.fetchall():
            timelines.setdefault(recipient, []).append((recorded_at, consent))
    return timelines


def consent_history(*, recipient: str) -> list[TrackingConsent]:
    """``recipient``'s records (stored form), newest first: the first is the current one.
    Errors: 404 / 1600 (``RecipientNotFound``) when the register has none."""
    found = list(TrackingConsent.objects.filter(recipient=recipient).order_by("-recorded_at", "-id"))
    if not found:
        raise errors.RecipientNotFound(f"'{recipient}' is not in the tracking consent register")
    return found


@dataclass(frozen=True, slots=True)
class ConsentSearch:
    """Filters of the search: the current ``consent``, ``source`` (exact), addresses after
    ``after`` (the keyset cursor: pages go by address), ``per_page`` records."""

    consent: str | None = None
    source: str | None = None
    after: str | None = None
    per_page: int = 1000


def consent_search(*, query: ConsentSearch) -> tuple[list[TrackingConsent], int, bool]:
    """``(page, total_count, more)``: the current record of every address that matches,
    ordered by address. Two statements."""
    matching = TrackingConsent.objects.filter(id__in=RawSQL(_CURRENT, []))
    if query.consent is not None:
        matching = matching.filter(consent=query.consent)
    if query.source is not None:
        matching = matching.filter(source=query.source)
    total = matching.count()
    page = matching if query.after is None else matching.filter(recipient__gt=query.after)
    rows = list(page.order_by("recipient")[: query.per_page + 1])
    return rows[: query.per_page], total, len(rows) > query.per_page
