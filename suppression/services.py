"""Writes to the suppression list (SPEC A.5). Every write is one statement per batch
(``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (recipient, type) DO UPDATE``), never a
query per address, and never changes an entry whose source is ``Compliance``.

- ``suppression_put``: the API's writes (source ``Manually Added``), all or nothing; an entry
  that is ``Compliance`` refuses the whole request with 403 / 1100.
- ``suppression_add``: for the other parts of Engage (bounces, unsubscribes, the admin):
  idempotent, an existing entry is updated, never duplicated; a ``Compliance`` entry is left
  as it is.
- ``suppression_from_events``: the automatic entries (hard bounces, unsubscribes) of a batch
  of landed events, in the lander's transaction. They only add: an address already listed for
  a type keeps the entry it has (its source, description and dates), so the first reason and
  time an address was suppressed stay the record, and a later unsubscribe from an older
  message, or a bounce after a manual entry, does not rewrite it.
- ``suppression_delete``: one address, one type or both; 404 / 1600, 403 / 1100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from engage import errors
from mailcore.addresses import mailbox_key
from suppression.entries import EntryWrite
from suppression.models import (
    AUTOMATIC_ENTRIES,
    HARD_BOUNCE_CLASSES,
    MAX_DESCRIPTION_BYTES,
    SuppressionEntry,
    SuppressionSource,
    SuppressionType,
)

_TABLE = SuppressionEntry._meta.db_table
_COMPLIANCE = SuppressionSource.COMPLIANCE.value

# Two forms: with a description (it replaces the stored one) and without (the stored one stays).
_UPSERT = f"""
    INSERT INTO {_TABLE} AS entry (recipient, type, source, description, created, updated)
    SELECT r, t, %(source)s, d, %(now)s, %(now)s FROM unnest(%(recipients)s::text[], %(types)s::text[], %(descriptions)s::text[]) AS i(r, t, d)
    ON CONFLICT (recipient, type) DO UPDATE
    SET source = EXCLUDED.source, description = EXCLUDED.description, updated = EXCLUDED.updated
    WHERE entry.source <> '{_COMPLIANCE}'
"""
_UPSERT_KEEP_DESCRIPTION = f"""
    INSERT INTO {_TABLE} AS entry (recipient, type, source, description, created, updated)
    SELECT r, t, %(source)s, d, %(now)s, %(now)s FROM unnest(%(recipients)s::text[], %(types)s::text[], %(descriptions)s::text[]) AS i(r, t, d)
    ON CONFLICT (recipient, type) DO UPDATE
    SET source = EXCLUDED.source, updated = EXCLUDED.updated
    WHERE entry.source <> '{_COMPLIANCE}'
"""

# The automatic entries: new ones only, an existing entry (any source) stays as it is.
_INSERT_NEW = f"""
    INSERT INTO {_TABLE} (recipient, type, source, description, created, updated)
    SELECT r, t, %(source)s, d, %(now)s, %(now)s FROM unnest(%(recipients)s::text[], %(types)s::text[], %(descriptions)s::text[]) AS i(r, t, d)
    ON CONFLICT (recipient, type) DO NOTHING
"""


def _write(statement: str, group: list[EntryWrite], *, source: str) -> int:
    """Run ``statement`` (one of the statements above) on ``group``; returns the rows written."""
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "source": source,
                "now": timezone.now(),
                "recipients": [write.recipient for write in group],
                "types": [write.type for write in group],
                "descriptions": [write.description or "" for write in group],
            },
        )
        return max(cursor.rowcount, 0)


def _upsert(writes: Iterable[EntryWrite], *, source: str) -> None:
    """Insert or update ``writes`` (no two with the same recipient and type) with ``source``."""
    groups: dict[bool, list[EntryWrite]] = {True: [], False: []}
    for write in writes:
        groups[write.description is not None].append(write)
    for described, group in groups.items():
        if group:
            _write(_UPSERT if described else _UPSERT_KEEP_DESCRIPTION, group, source=source)


def _last_wins(writes: Iterable[EntryWrite]) -> list[EntryWrite]:
    latest: dict[tuple[str, str], EntryWrite] = {}
    for write in writes:
        latest.pop((write.recipient, write.type), None)
        latest[(write.recipient, write.type)] = write
    return list(latest.values())


def suppression_put(*, writes: list[EntryWrite]) -> None:
    """Store the API's ``writes`` (from ``suppression.entries``) as ``Manually Added``, in one
    transaction: all or nothing. An address and type given twice: the last wins.

    Errors: 403 / 1100 (``ComplianceUpdateRefused``) naming the first entry whose stored source
    is ``Compliance``; nothing is written then.
    """
    unique = _last_wins(writes)
    if not unique:
        return
    keys = {(write.recipient, write.type) for write in unique}
    with transaction.atomic():
        locked = (
            SuppressionEntry.objects.select_for_update()
            .filter(recipient__in={recipient for recipient, _type in keys}, source=_COMPLIANCE)
            .values_list("recipient", "type")
        )
        refused = sorted(key for key in locked if key in keys)
        if refused:
            recipient, kind = refused[0]
            raise errors.ComplianceUpdateRefused(
                f"'{recipient}' ({kind}) was added by staff for compliance and cannot be changed through the API"
            )
        _upsert(unique, source=SuppressionSource.MANUALLY_ADDED)


def _fit(description: str) -> str:
    """``description`` cut to ``MAX_DESCRIPTION_BYTES`` of UTF-8 on a character boundary."""
    data = description.encode("utf-8", "replace")
    if len(data) <= MAX_DESCRIPTION_BYTES:
        return description
    return data[:MAX_DESCRIPTION_BYTES].decode("utf-8", "ignore")


def suppression_add(*, recipient: str, types: Iterable[str], source: str, description: str) -> None:
    """Suppress ``recipient`` (any spelling; stored as its ``mailbox_key``) for each of ``types``
    (``SuppressionType`` values) with ``source`` (a ``SuppressionSource`` value) and
    ``description`` (cut to 1,024 bytes). Idempotent: an existing entry gets the new source,
    description and ``updated``; one whose source is ``Compliance`` is left as it is. Opens
    no transaction of its own: it joins the caller's (one statement).

    Raises ValueError for a type or source that is not one of the declared values.
    """
    kinds = tuple(dict.fromkeys(types))
    unknown = [kind for kind in kinds if kind not in SuppressionType.values]
    if unknown or source not in SuppressionSource.values:
        raise ValueError(f"unknown suppression type(s) {unknown} or source {source!r}")
    key = mailbox_key(recipient)
    _upsert((EntryWrite(key, kind, _fit(description)) for kind in kinds), source=source)


def _automatic_description(event: Mapping[str, Any]) -> str:
    """What an automatic entry says about where it came from, naming the message: the remote
    answer of a bounce (``550: 550 5.1.1 no such user``, as SparkPost's samples, B §11.7), or
    how the recipient unsubscribed."""
    kind = event.get("type")
    if kind == "bounce":
        what = f"{event.get('error_code') or ''}: {event.get('reason') or ''}".strip(": ")
    elif kind == "list_unsubscribe":
        what = "Unsubscribed using list unsubscribe header"
    else:
        what = "Unsubscribed using an unsubscribe link"
    return f"{what} (message {event.get('message_id') or '?'}, transmission {event.get('transmission_id') or '?'})"


def suppression_from_events(*, events: Iterable[Mapping[str, Any]]) -> int:
    """Add the entries that landed ``events`` (``tracking_event`` columns: ``type``,
    ``rcpt_to``, ``message_id``, ``transmission_id``, ``bounce_class``, ``error_code``,
    ``reason``) call for, per :data:`suppression.models.AUTOMATIC_ENTRIES` (SPEC A.5): a hard
    bounce (class 10, 30, 90) both types, ``list_unsubscribe`` / ``link_unsubscribe``
    ``non_transactional``; any other event nothing. Only adds: an address already listed for
    a type (whatever the source) keeps its entry, so the first cause stays its record. One
    statement per source, in the caller's transaction (the lander's, so an entry commits with
    the event that caused it). Returns how many entries were added."""
    by_source: dict[str, list[EntryWrite]] = {}
    for event in events:
        rule = AUTOMATIC_ENTRIES.get(str(event.get("type")))
        recipient = str(event.get("rcpt_to") or "").strip()
        if rule is None or not recipient:
            continue
        if event.get("type") == "bounce" and str(event.get("bounce_class")) not in HARD_BOUNCE_CLASSES:
            continue
        source, kinds = rule
        description = _fit(_automatic_description(event))
        by_source.setdefault(source, []).extend(EntryWrite(mailbox_key(recipient), kind, description) for kind in kinds)
    written = 0
    for source, writes in by_source.items():
        # The first cause in the batch is the entry's, as the first in time is across batches.
        first = list({(write.recipient, write.type): write for write in reversed(writes)}.values())
        written += _write(_INSERT_NEW, first, source=source)
    return written


def suppression_delete(*, recipient: str, type: str | None = None) -> int:
    """Remove ``recipient``'s entries (stored form), of ``type`` only when given; returns how
    many went.

    Errors: 404 / 1600 (``RecipientNotFound``) when nothing matches (also when only the other
    type is there); 403 / 1100 (``ComplianceRemoveRefused``) when a matching entry's source is
    ``Compliance``: nothing is removed then.
    """
    with transaction.atomic():
        matching = SuppressionEntry.objects.select_for_update().filter(recipient=recipient)
        if type is not None:
            matching = matching.filter(type=type)
        found = list(matching.values_list("id", "source"))
        if not found:
            raise errors.RecipientNotFound(
                f"'{recipient}' is not on the suppression list" + (f" for {type}" if type else "")
            )
        if any(source == _COMPLIANCE for _id, source in found):
            raise errors.ComplianceRemoveRefused()
        SuppressionEntry.objects.filter(id__in=[pk for pk, _source in found]).delete()
    return len(found)
