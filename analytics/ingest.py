"""The bulk insert path for events: COPY straight into ``tracking_event``, stage the new rows
for the rollups, and fold them into the rollups, all on the caller's cursor (so in the
caller's transaction).

The rows are encoded once, and the table's index maintenance runs while the client is
still encoding (COPY streams), so landing costs little more than a plain COPY plus the
rollups. Ids are taken from the table's sequence beforehand, so the batch can then be
read back by id range into the small staging table ``rollups.LANDED``.

The unique ``(event_id, timestamp)`` index makes landing idempotent: when it refuses the
COPY (a batch re-landed after a crash, or landed concurrently), the batch is staged in full
and goes through ``INSERT ... ON CONFLICT DO NOTHING``, and only the rows that were new are
staged for the rollups.

The lander (``analytics.landing``) normalises each buffered record with ``event_row`` (the
one place an event becomes a row) and lands the batch through ``events_insert``; tests and
``bench/webhook_fanout.py`` use the same two functions to land events as production does.

Engagement events (opens, clicks, unsubscribes) come from a tracking token, which does not
carry the message's From and Subject (they would lengthen every link, and the click
redirect reads no database). ``events_insert`` fills their ``friendly_from`` and
``subject`` from the message's send-side event (``injection``, ``delivery``, ...: written
when it was built), found in the batch itself or with one query per batch. A recipient
without tracking consent gets a List-Unsubscribe token that names only the message and the
recipient (SPEC A.5: no metadata in any URL); its event gets the rest of the message's
fields (transmission, campaign, template, metadata, tags) the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from analytics import rollups
from mailcore.events import names_in
from suppression.models import AUTOMATIC_ENTRIES
from suppression.services import suppression_from_events
from tracking.models import EVENT_COLUMNS, EVENT_DEFAULTS, EVENT_JSON_COLUMNS

STAGE = "analytics_stage"
WORK_MEM = "64MB"
SEQUENCE = "tracking_event_id_seq"  # the bigserial of tracking_event.id

_COLS = ", ".join(EVENT_COLUMNS)
_TIMESTAMP = EVENT_COLUMNS.index("timestamp")
_LANDED = f"{rollups.LANDED} ({', '.join(rollups.LANDED_COLUMNS)})"

_MISSING_PARTITIONS = (
    "SELECT day FROM unnest(%s::date[]) AS day WHERE to_regclass('tracking_event_' || to_char(day, 'YYYYMMDD')) IS NULL"
)
_IDS = f"SELECT array_agg(nextval('{SEQUENCE}')) FROM generate_series(1, %s)"
_STAGE_LANDED = f"INSERT INTO {_LANDED} SELECT {rollups.LANDED_SELECT} FROM tracking_event WHERE id BETWEEN %s AND %s"
# The slow path: what of the batch is new goes in, and only that is staged for the rollups.
_CREATE_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} AS SELECT id, {_COLS} FROM tracking_event WITH NO DATA"
_INSERT_NEW = f"""
WITH ins AS (
  INSERT INTO tracking_event (id, {_COLS}) SELECT id, {_COLS} FROM {STAGE}
  ON CONFLICT (event_id, timestamp) DO NOTHING
  RETURNING {rollups.LANDED_SELECT}
)
INSERT INTO {_LANDED} SELECT * FROM ins"""
_UNIQUE_VIOLATION = "23505"
# Events that take friendly_from/subject from their message, and those that hold them.
_ENGAGEMENT_TYPES = names_in("track_event", "unsubscribe_event")
_SEND_TYPES = names_in("message_event")
_MESSAGE_FIELDS = """
SELECT DISTINCT ON (message_id) message_id, friendly_from, subject FROM tracking_event
WHERE message_id = ANY(%s) AND type = ANY(%s) AND (friendly_from <> '' OR subject <> '')
ORDER BY message_id, timestamp"""
# The fields of a message that a token naming only the message and its recipient leaves out
# (``mailcore.tokens.TokenSigner.for_message_reference``), and the ``extra`` keys among them
# (``transmissions.generation``'s source fields: how an SMTP message came in).
_REFERENCE_COLUMNS = ("transmission_id", "campaign_id", "template_id", "template_version", "transactional",
                      "rcpt_meta", "rcpt_tags")  # fmt: skip
_REFERENCE_EXTRA = ("recv_method", "rcpt_type")
_MESSAGE_REFERENCES = f"""
SELECT DISTINCT ON (message_id) message_id,
       {", ".join(f"{c}::text" if c in EVENT_JSON_COLUMNS else c for c in _REFERENCE_COLUMNS)},
       {", ".join(f"extra->>'{key}'" for key in _REFERENCE_EXTRA)}
  FROM tracking_event
 WHERE message_id = ANY(%s) AND type = ANY(%s) AND transmission_id <> ''
 ORDER BY message_id, timestamp"""
# The new rows that may add a suppression entry (``suppression.models.AUTOMATIC_ENTRIES``).
_SUPPRESSING_COLUMNS = ("type", "rcpt_to", "message_id", "transmission_id", "bounce_class", "error_code", "reason")
_SUPPRESSING = f"""
SELECT {", ".join("e." + c for c in _SUPPRESSING_COLUMNS)}
  FROM {rollups.LANDED} l JOIN tracking_event e ON e.id = l.id AND e.timestamp = l.timestamp
 WHERE l.type = ANY(%s)"""
_SUPPRESSING_TYPES = sorted(AUTOMATIC_ENTRIES)
# One ``list_unsubscribe`` per message (SPEC A.5: a one-click POST twice records one event).
# Landers that carry one take this transaction lock, so two cannot both find none landed.
_UNSUBSCRIBE_LOCK = 0x656E_6761_7573_01  # "engaus" + 1
_UNSUBSCRIBED = (
    "SELECT message_id, event_id FROM tracking_event WHERE message_id = ANY(%s) AND type = 'list_unsubscribe'"
)


_COLUMN_SET = frozenset(EVENT_COLUMNS)
_TRUE_STRINGS = frozenset({"1", "true", "yes", "on"})


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return bool(value)


def _as_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, int | float):
        ts = datetime.fromtimestamp(value, UTC)
    else:
        text = str(value)
        ts = (
            datetime.fromtimestamp(float(text), UTC)
            if text.replace(".", "", 1).isdigit()
            else datetime.fromisoformat(text)
        )
    if ts.tzinfo is None:
        raise ValueError("naive timestamp")
    return ts.astimezone(UTC)


def event_row(record: dict[str, Any]) -> dict[str, Any]:
    """The one normalisation of an event (STYLE rule 12): a record as buffered or handed in
    (Event column names; ``event_id``, ``type`` and ``timestamp`` required) as a
    ``tracking_event`` row, ``{column: value}`` for every column of ``EVENT_COLUMNS``.

    Missing and null columns take ``EVENT_DEFAULTS``; ``timestamp`` becomes an aware UTC
    datetime (from a datetime, Unix seconds or ISO 8601 with offset); ``transactional`` a
    bool ("1", "true", "yes", "on" are true); the other non-JSON columns strings;
    ``recipient_domain`` defaults to the domain of ``rcpt_to``, lower-cased; keys that are
    no column go into ``extra`` (``id`` is dropped). Raises KeyError for a missing required
    field and ValueError (or TypeError) for a timestamp that cannot be read or is naive."""
    row = {column: record.get(column, EVENT_DEFAULTS.get(column)) for column in EVENT_COLUMNS}
    extra = dict(record["extra"]) if isinstance(record.get("extra"), dict) else {}
    for key, value in record.items():
        if key not in _COLUMN_SET and key != "id":
            extra[key] = value
    row["extra"] = extra
    row["event_id"] = str(record["event_id"])
    row["type"] = str(record["type"])
    row["timestamp"] = _as_timestamp(record["timestamp"])
    row["transactional"] = _as_bool(row["transactional"])
    for column in EVENT_COLUMNS:
        value = row[column]
        if value is None:
            row[column] = EVENT_DEFAULTS.get(column, "")
        elif (
            column not in EVENT_JSON_COLUMNS
            and column not in ("timestamp", "transactional")
            and not isinstance(value, str)
        ):
            row[column] = str(value)
    if not row["recipient_domain"] and "@" in row["rcpt_to"]:
        row["recipient_domain"] = row["rcpt_to"].rpartition("@")[2].lower()
    return row


def event_values(row: dict[str, Any]) -> tuple:
    """A row from :func:`event_row` as the values of ``EVENT_COLUMNS``, in order, the JSON
    columns wrapped for psycopg (what COPY and INSERT take)."""
    return tuple(Jsonb(row[column]) if column in EVENT_JSON_COLUMNS else row[column] for column in EVENT_COLUMNS)


def _unique_violation(exc: BaseException) -> bool:
    # psycopg raises it as is; Django's cursor wraps it (the original is the cause).
    return _UNIQUE_VIOLATION in (getattr(exc, "sqlstate", None), getattr(exc.__cause__, "sqlstate", None))


def _partitions_ensure(cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
    """Create the day partitions the rows need, before they land (rows of a day without one
    would go to DEFAULT, and that day's partition could then never be made)."""
    days = sorted({row[_TIMESTAMP].astimezone(UTC).date() for row in rows})
    cursor.execute(_MISSING_PARTITIONS, [days])
    for (day,) in cursor.fetchall():
        cursor.execute("SAVEPOINT engage_partition")
        try:
            cursor.execute("SELECT engage_event_partition(%s)", [day])
        except Exception:
            # Rows of that day already sit in DEFAULT: the new ones join them there.
            cursor.execute("ROLLBACK TO SAVEPOINT engage_partition")
        else:
            cursor.execute("RELEASE SAVEPOINT engage_partition")


def _copy(cursor: Any, table: str, ids: Sequence[int], rows: Sequence[Sequence[Any]]) -> None:
    with cursor.copy(f"COPY {table} (id, {_COLS}) FROM STDIN") as copy:
        for pk, row in zip(ids, rows, strict=True):
            copy.write_row((pk, *row))


def events_insert_rows(cursor: Any, rows: Sequence[Sequence[Any]]) -> int:
    """Land rows already in ``EVENT_COLUMNS`` order (an aware datetime for ``timestamp``,
    JSON columns wrapped in ``Jsonb``); returns how many were new. Duplicates of landed
    ``(event_id, timestamp)`` are skipped and not counted, so a batch may be landed twice.
    Afterwards ``rollups.LANDED`` holds exactly the new rows (``id`` included). The new hard
    bounces and unsubscribes have added their suppression entries (SPEC A.5)."""
    rollups.landed_prepare(cursor)
    if not rows:
        return 0
    _partitions_ensure(cursor, rows)
    # A 50k batch's hash aggregates and sorts overflow the default 4 MB work_mem and spill
    # to temp files; raise it for these statements only (transaction-local, restored
    # before returning so the caller's later statements are unaffected).
    cursor.execute(f"SELECT current_setting('work_mem'), set_config('work_mem', '{WORK_MEM}', true)")
    previous_work_mem = cursor.fetchone()[0]
    cursor.execute(_IDS, [len(rows)])
    ids = cursor.fetchone()[0]
    low, high = min(ids), max(ids)
    cursor.execute("SAVEPOINT engage_ingest")
    try:
        _copy(cursor, "tracking_event", ids, rows)
    except Exception as exc:
        if not _unique_violation(exc):
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT engage_ingest")
        cursor.execute(_CREATE_STAGE)
        cursor.execute(f"TRUNCATE {STAGE}")
        _copy(cursor, STAGE, ids, rows)
        cursor.execute(_INSERT_NEW)
    else:
        if high - low + 1 == len(rows):
            cursor.execute(_STAGE_LANDED, [low, high])
        else:  # another session drew ids in between: its rows may share the range
            cursor.execute(_STAGE_LANDED + " AND id = ANY(%s::bigint[])", [low, high, list(ids)])
    inserted = cursor.rowcount
    cursor.execute("RELEASE SAVEPOINT engage_ingest")
    rollups.rollups_from_landed(cursor)
    _suppression_add(cursor)
    cursor.execute("SELECT set_config('work_mem', %s, true)", [previous_work_mem])
    return inserted


def _suppression_add(cursor: Any) -> None:
    """Add the suppression entries the new rows (staged in ``rollups.LANDED``) call for: hard
    bounces and unsubscribes (SPEC A.5), in this transaction, so an entry is never lost
    while its event landed, and a batch landed again adds nothing again."""
    cursor.execute(_SUPPRESSING, [_SUPPRESSING_TYPES])
    found = cursor.fetchall()
    if found:
        suppression_from_events(events=[dict(zip(_SUPPRESSING_COLUMNS, row, strict=True)) for row in found])


def unsubscribes_once(
    cursor: Any, events: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``events`` split in two: those to land, without the ``list_unsubscribe`` events of a
    message that already has one, landed or earlier in ``events`` (a one-click POST sent
    twice records one event, SPEC A.5); and those repeats, less any whose ``event_id`` has
    landed already (a batch landed again). A repeat is still a request to be honoured: the
    caller adds its suppression entry (which the first one's may no longer be, if the entry
    was removed in between). One query when there is such an event, under a transaction lock
    held until the caller commits."""
    wanted = {
        event["message_id"] for event in events if event.get("type") == "list_unsubscribe" and event.get("message_id")
    }
    if not wanted:
        return list(events), []
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_UNSUBSCRIBE_LOCK])
    cursor.execute(_UNSUBSCRIBED, [sorted(wanted)])
    landed = cursor.fetchall()
    seen = {message_id for message_id, _event_id in landed}
    replayed = {event_id for _message_id, event_id in landed}
    kept: list[dict[str, Any]] = []
    repeats: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "list_unsubscribe" and event.get("message_id"):
            if event["message_id"] in seen:
                if event.get("event_id") not in replayed:
                    repeats.append(event)
                continue
            seen.add(event["message_id"])
        kept.append(event)
    return kept, repeats


def _bare(event: dict[str, Any]) -> bool:
    """An engagement event from a token that names only its message and recipient."""
    return event.get("type") in _ENGAGEMENT_TYPES and bool(event.get("message_id")) and not event.get("transmission_id")


def message_references_fill(cursor: Any, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with each engagement event that carries no ``transmission_id`` (its token
    names only the message and the recipient: a recipient without tracking consent, SPEC
    A.5) given its message's transmission, campaign, template, ``transactional``, metadata,
    tags and source fields (copies; the others as they are). They come from a send-side event
    of the same ``message_id`` in ``events`` or, for the rest, from ``tracking_event`` in one
    query, made only when there is such an event; one whose message has none stays as it is."""
    wanting = {event["message_id"] for event in events if _bare(event)}
    if not wanting:
        return list(events)
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        message_id = str(event.get("message_id") or "")
        if (
            message_id in wanting
            and message_id not in found
            and event.get("type") in _SEND_TYPES
            and event.get("transmission_id")
        ):
            extra = event.get("extra") or {}
            found[message_id] = {
                **{column: event.get(column) for column in _REFERENCE_COLUMNS},
                "extra": {key: extra[key] for key in _REFERENCE_EXTRA if key in extra},
            }
    missing = sorted(wanting - found.keys())
    if missing:
        cursor.execute(_MESSAGE_REFERENCES, [missing, sorted(_SEND_TYPES)])
        width = len(_REFERENCE_COLUMNS)
        for message_id, *values in cursor.fetchall():
            extra = dict(zip(_REFERENCE_EXTRA, values[width:], strict=True))
            columns = dict(zip(_REFERENCE_COLUMNS, values[:width], strict=True))
            found[message_id] = {
                **{c: json.loads(v) if c in EVENT_JSON_COLUMNS else v for c, v in columns.items()},
                "extra": {key: value for key, value in extra.items() if value is not None},
            }
    filled: list[dict[str, Any]] = []
    for event in events:
        fields = found.get(event["message_id"]) if _bare(event) else None
        if fields is not None:
            event = {**event, **fields, "extra": {**fields["extra"], **(event.get("extra") or {})}}
        filled.append(event)
    return filled


def message_fields_fill(cursor: Any, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with each engagement event that has neither ``friendly_from`` nor
    ``subject`` given its message's (copies; the others as they are). The values come from a
    send-side event of the same ``message_id`` in ``events`` or, for the rest, from
    ``tracking_event`` in one query; an event whose message has none stays as it is."""
    wanting = {
        event["message_id"]
        for event in events
        if event.get("type") in _ENGAGEMENT_TYPES
        and event.get("message_id")
        and not event.get("friendly_from")
        and not event.get("subject")
    }
    if not wanting:
        return list(events)
    found: dict[str | None, tuple[str, str]] = {}  # keyed as events carry message_id (None: never found)
    for event in events:
        message_id = event.get("message_id")
        if (
            message_id in wanting
            and message_id not in found
            and event.get("type") in _SEND_TYPES
            and (event.get("friendly_from") or event.get("subject"))
        ):
            found[message_id] = (event.get("friendly_from") or "", event.get("subject") or "")
    missing = sorted(wanting - found.keys())
    if missing:
        cursor.execute(_MESSAGE_FIELDS, [missing, sorted(_SEND_TYPES)])
        for message_id, friendly_from, subject in cursor.fetchall():
            found[message_id] = (friendly_from, subject)
    filled: list[dict[str, Any]] = []
    for event in events:
        fields = found.get(event.get("message_id"))
        if (
            fields is not None
            and event.get("type") in _ENGAGEMENT_TYPES
            and not event.get("friendly_from")
            and not event.get("subject")
        ):
            event = {**event, "friendly_from": fields[0], "subject": fields[1]}
        filled.append(event)
    return filled


def events_insert(cursor: Any, events: Sequence[dict[str, Any]], *, returning: bool = True) -> list[dict[str, Any]]:
    """Insert ``events`` (rows as :func:`event_row` makes them) skipping duplicates, and fold
    the inserted ones into the rollups and webhook queues, on ``cursor`` (run it inside
    ``transaction.atomic``). A message's second ``list_unsubscribe`` is dropped
    (:func:`unsubscribes_once`), though its suppression entry is added again if it was
    removed meanwhile; engagement events get their message's ``friendly_from`` and
    ``subject`` first (:func:`message_fields_fill`), and those whose token named only the
    message and recipient its other fields (:func:`message_references_fill`). The new rows'
    suppression entries are added in the same transaction (SPEC A.5). Returns the inserted rows as dicts
    (``id`` included), or ``[]`` when ``returning`` is false."""
    if not events:
        return []
    events, repeats = unsubscribes_once(cursor, events)
    events = message_fields_fill(cursor, message_references_fill(cursor, events))
    events_insert_rows(cursor, [event_values(event) for event in events])
    if repeats:
        suppression_from_events(events=message_references_fill(cursor, repeats))
    if not returning:
        return []
    cursor.execute(
        f"SELECT e.id, {', '.join('e.' + c for c in EVENT_COLUMNS)} FROM tracking_event e "
        f"JOIN {rollups.LANDED} l ON e.id = l.id AND e.timestamp = l.timestamp ORDER BY e.timestamp, e.id"
    )
    names = ["id", *EVENT_COLUMNS]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
