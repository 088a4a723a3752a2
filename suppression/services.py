"""Writes to the suppression list (SPEC A.5). Every write is one statement per batch
(``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (recipient, type) DO UPDATE``), never a
query per address, and never changes an entry whose source is ``Compliance``. Every statement
takes its rows in the unique key's order, so concurrent writers do not deadlock (``_ROWS``).

- ``suppression_put``: the API's writes (source ``Manually Added``), all or nothing; an entry
  that is ``Compliance`` refuses the whole request with 403 / 1100; retried when it is a
  deadlock's victim, then 503 / 1502.
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

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from engage import errors
from engage.errors import is_deadlock
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

log = logging.getLogger(__name__)

_TABLE = SuppressionEntry._meta.db_table
_COMPLIANCE = SuppressionSource.COMPLIANCE.value

# Every statement takes its rows in one canonical order, the unique key's (``recipient``, then
# ``type``, compared as bytes: COLLATE "C" is Python's order of ``str``, which :func:`_write`
# sorts by too), so writers that meet on the same entries lock them in the same order and one
# waits for the other instead of deadlocking (found by an attacker: the same 5,000 addresses
# PUT at once in opposite orders answered 500 with DeadlockDetected).
_ROWS = """
    SELECT r, t, s, d, %(now)s, %(now)s
      FROM unnest(%(recipients)s::text[], %(types)s::text[], %(sources)s::text[], %(descriptions)s::text[])
           AS i(r, t, s, d)
     ORDER BY r COLLATE "C", t COLLATE "C"
"""
_INTO = f"INSERT INTO {_TABLE} AS entry (recipient, type, source, description, created, updated)"

# Two forms: with a description (it replaces the stored one) and without (the stored one stays).
# DO UPDATE locks every conflicting row, a Compliance one too (its WHERE is false).
_UPSERT = f"""{_INTO} {_ROWS}
    ON CONFLICT (recipient, type) DO UPDATE
    SET source = EXCLUDED.source, description = EXCLUDED.description, updated = EXCLUDED.updated
    WHERE entry.source <> '{_COMPLIANCE}'
"""
_UPSERT_KEEP_DESCRIPTION = f"""{_INTO} {_ROWS}
    ON CONFLICT (recipient, type) DO UPDATE
    SET source = EXCLUDED.source, updated = EXCLUDED.updated
    WHERE entry.source <> '{_COMPLIANCE}'
"""
# The descriptions of a request that mixes entries with and without one, after
# _UPSERT_KEEP_DESCRIPTION wrote or locked every row it names: it waits for no other writer.
_DESCRIBE = f"""
    UPDATE {_TABLE} AS entry SET description = i.d
      FROM unnest(%(recipients)s::text[], %(types)s::text[], %(sources)s::text[], %(descriptions)s::text[])
           AS i(r, t, s, d)
     WHERE entry.recipient = i.r AND entry.type = i.t AND entry.source <> '{_COMPLIANCE}'
       AND entry.description <> i.d
"""

# The automatic entries: new ones only, an existing entry (any source) stays as it is.
_INSERT_NEW = f"""{_INTO} {_ROWS}
    ON CONFLICT (recipient, type) DO NOTHING
"""

#: How many times a write that PostgreSQL chose as a deadlock's victim is tried in all: the
#: canonical order leaves only writers outside this module (the admin, a future one) to meet.
DEADLOCK_ATTEMPTS = 4


def _write(statement: str, rows: Iterable[tuple[EntryWrite, str]]) -> int:
    """Run ``statement`` (one of the statements above) on ``rows`` (``(write, source)``, no
    two with the same recipient and type), sorted by that key; returns the rows written."""
    ordered = sorted(rows, key=lambda row: (row[0].recipient, row[0].type))
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "now": timezone.now(),
                "recipients": [write.recipient for write, _source in ordered],
                "types": [write.type for write, _source in ordered],
                "sources": [source for _write, source in ordered],
                "descriptions": [write.description or "" for write, _source in ordered],
            },
        )
        return max(cursor.rowcount, 0)


def _upsert(writes: Iterable[EntryWrite], *, source: str) -> None:
    """Insert or update ``writes`` (no two with the same recipient and type) with ``source``:
    one statement that takes every row in key order; a second only when some writes carry a
    description and others do not (it touches only rows the first one holds)."""
    rows = [(write, source) for write in writes]
    described = [(write, source) for write, source in rows if write.description is not None]
    if len(described) == len(rows):
        _write(_UPSERT, rows)
        return
    _write(_UPSERT_KEEP_DESCRIPTION, rows)
    if described:
        _write(_DESCRIBE, described)


def _retried(work: Callable[[], None]) -> None:
    """Run ``work`` in a transaction of its own, again (after a short random pause) when
    PostgreSQL ends it as a deadlock's victim, at most :data:`DEADLOCK_ATTEMPTS` times in
    all; then 503 / 1502 (``errors.WriteContention``), never a 500."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                work()
            return
        except OperationalError as exc:
            if not is_deadlock(exc):
                raise
            log.warning("suppression list write was a deadlock's victim (attempt %d of %d)", attempt, DEADLOCK_ATTEMPTS)
            if attempt < DEADLOCK_ATTEMPTS:
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
    raise errors.WriteContention(
        "The suppression list entries were being written by other requests at the same time; retry the request"
    )


def _last_wins(writes: Iterable[EntryWrite]) -> list[EntryWrite]:
    latest: dict[tuple[str, str], EntryWrite] = {}
    for write in writes:
        latest.pop((write.recipient, write.type), None)
        latest[(write.recipient, write.type)] = write
    return list(latest.values())


def suppression_put(*, writes: list[EntryWrite]) -> None:
    """Store the API's ``writes`` (from ``suppression.entries``) as ``Manually Added``, in one
    transaction: all or nothing. An address and type given twice: the last wins. Rows are
    written in key order (``recipient``, ``type``), so concurrent requests never deadlock on
    each other; a deadlock with another writer is retried (:func:`_retried`).

    Errors: 403 / 1100 (``ComplianceUpdateRefused``) naming the first entry whose stored source
    is ``Compliance``; nothing is written then. 503 / 1502 (``WriteContention``) when it was a
    deadlock's victim every time.
    """
    unique = _last_wins(writes)
    if not unique:
        return
    keys = {(write.recipient, write.type) for write in unique}

    def work() -> None:
        locked = (
            SuppressionEntry.objects.select_for_update()
            .filter(recipient__in={recipient for recipient, _type in keys}, source=_COMPLIANCE)
            .order_by("recipient", "type")
            .values_list("recipient", "type")
        )
        refused = sorted(key for key in locked if key in keys)
        if refused:
            recipient, kind = refused[0]
            raise errors.ComplianceUpdateRefused(
                f"'{recipient}' ({kind}) was added by staff for compliance and cannot be changed through the API"
            )
        _upsert(unique, source=SuppressionSource.MANUALLY_ADDED)

    _retried(work)


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
    statement, in key order (see :func:`_write`), in the caller's transaction (the lander's, so
    an entry commits with the event that caused it; a deadlock there fails the landing round,
    which lands the batch again). Returns how many entries were added."""
    rows: list[tuple[EntryWrite, str]] = []
    for event in events:
        rule = AUTOMATIC_ENTRIES.get(str(event.get("type")))
        recipient = str(event.get("rcpt_to") or "").strip()
        if rule is None or not recipient:
            continue
        if event.get("type") == "bounce" and str(event.get("bounce_class")) not in HARD_BOUNCE_CLASSES:
            continue
        source, kinds = rule
        description = _fit(_automatic_description(event))
        rows.extend((EntryWrite(mailbox_key(recipient), kind, description), source) for kind in kinds)
    # The first cause in the batch is the entry's, as the first in time is across batches.
    first = list({(write.recipient, write.type): (write, source) for write, source in reversed(rows)}.values())
    return _write(_INSERT_NEW, first) if first else 0


def suppression_delete(*, recipient: str, type: str | None = None) -> int:
    """Remove ``recipient``'s entries (stored form), of ``type`` only when given; returns how
    many went.

    Errors: 404 / 1600 (``RecipientNotFound``) when nothing matches (also when only the other
    type is there); 403 / 1100 (``ComplianceRemoveRefused``) when a matching entry's source is
    ``Compliance``: nothing is removed then.
    """
    with transaction.atomic():
        matching = SuppressionEntry.objects.select_for_update().filter(recipient=recipient).order_by("type")
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
