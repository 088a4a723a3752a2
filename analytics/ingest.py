"""The bulk insert path for events: COPY into a staging table, INSERT into ``tracking_event``,
and fold exactly the inserted rows into the rollups, all on the caller's cursor (so in the
caller's transaction).

The unique ``(event_id, timestamp)`` index makes landing idempotent: a batch is first tried
as a plain INSERT, and only when the index refuses it (a batch re-landed after a crash, or
landed concurrently) does it go through ``ON CONFLICT DO NOTHING`` and keep just the rows
that were new. Either way the rollups read the staging table, which then holds exactly the
new rows.

The lander (``tracking.events``) lands every buffered batch through ``events_insert``;
tests and ``bench/metrics.py`` use it to land events exactly as production does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from analytics import rollups
from tracking.models import EVENT_COLUMNS, EVENT_DEFAULTS

STAGE = "analytics_stage"
WORK_MEM = "64MB"

_DEFAULTS = EVENT_DEFAULTS
_JSON = {"rcpt_meta", "rcpt_tags", "extra"}
_COLS = ", ".join(EVENT_COLUMNS)

_ENSURE_PARTITIONS = f"""
DO $$
DECLARE d date;
BEGIN
  FOR d IN SELECT (day AT TIME ZONE 'UTC')::date
           FROM (SELECT DISTINCT date_bin('1 day', timestamp, '2000-01-01 00:00+00') AS day FROM {STAGE}) days LOOP
    IF to_regclass('tracking_event_' || to_char(d, 'YYYYMMDD')) IS NULL THEN
      BEGIN
        PERFORM engage_event_partition(d);
      EXCEPTION WHEN others THEN NULL;  -- rows of that day already sit in DEFAULT: they stay there
      END;
    END IF;
  END LOOP;
END $$"""

_CREATE_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE tracking_event INCLUDING DEFAULTS)"
# The common case: nothing of the batch has landed yet, so a plain INSERT (no speculative
# insertion, no RETURNING) does; the unique (event_id, timestamp) index still refuses a
# duplicate, and then the batch takes the slow path below.
_INSERT = f"INSERT INTO tracking_event (id, {_COLS}) SELECT id, {_COLS} FROM {STAGE}"
# A re-landed (or concurrently landed) batch: insert what is new and keep only that staged.
_INSERT_NEW = f"""
WITH ins AS (
  INSERT INTO tracking_event (id, {_COLS}) SELECT id, {_COLS} FROM {STAGE}
  ON CONFLICT (event_id, timestamp) DO NOTHING
  RETURNING id
)
DELETE FROM {STAGE} s WHERE NOT EXISTS (SELECT FROM ins WHERE ins.id = s.id)"""
_SOURCE = rollups.staged_source(STAGE)
_UNIQUE_VIOLATION = "23505"


def event_row(event: dict[str, Any]) -> tuple:
    """An event dict (Event column names; ``event_id``, ``type`` and an aware ``timestamp``
    required) as a row in ``EVENT_COLUMNS`` order, defaults filled in."""
    row = []
    for column in EVENT_COLUMNS:
        value = event.get(column)
        if value is None:
            value = _DEFAULTS.get(column)
            if value is None:
                raise ValueError(f"event is missing {column!r}")
        if column == "recipient_domain" and not value:
            value = (event.get("rcpt_to") or "").rpartition("@")[2].lower()
        row.append(Jsonb(value) if column in _JSON else value)
    return tuple(row)


def _unique_violation(exc: BaseException) -> bool:
    # psycopg raises it as is; Django's cursor wraps it (the original is the cause).
    return _UNIQUE_VIOLATION in (getattr(exc, "sqlstate", None), getattr(exc.__cause__, "sqlstate", None))


def events_insert_rows(cursor: Any, rows: Iterable[Sequence[Any]]) -> int:
    """Land rows already in ``EVENT_COLUMNS`` order (JSON columns wrapped in ``Jsonb``);
    returns how many were new. Duplicates of landed ``(event_id, timestamp)`` are skipped
    and not counted, so a batch may be landed twice. Afterwards the staging table holds
    exactly the new rows (``id`` included)."""
    cursor.execute(_CREATE_STAGE)
    cursor.execute(f"TRUNCATE {STAGE}")
    with cursor.copy(f"COPY {STAGE} ({_COLS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(_ENSURE_PARTITIONS)
    # A 50k batch's hash aggregates and sorts overflow the default 4 MB work_mem and spill
    # to temp files; raise it for these statements only (transaction-local, restored
    # before returning so the caller's later statements are unaffected).
    cursor.execute(f"SELECT current_setting('work_mem'), set_config('work_mem', '{WORK_MEM}', true)")
    previous_work_mem = cursor.fetchone()[0]
    cursor.execute("SAVEPOINT engage_ingest")
    try:
        cursor.execute(_INSERT)
        inserted = cursor.rowcount
    except Exception as exc:
        if not _unique_violation(exc):
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT engage_ingest")
        cursor.execute(_INSERT_NEW)
        cursor.execute(f"SELECT count(*) FROM {STAGE}")
        inserted = cursor.fetchone()[0]
    cursor.execute("RELEASE SAVEPOINT engage_ingest")
    rollups.rollups_from(cursor, _SOURCE)
    cursor.execute("SELECT set_config('work_mem', %s, true)", [previous_work_mem])
    return inserted


def events_insert(cursor: Any, events: Sequence[dict[str, Any]], *, returning: bool = True) -> list[dict[str, Any]]:
    """Insert ``events`` (dicts keyed by Event column names) skipping duplicates, and fold
    the inserted ones into the rollups and webhook queues, on ``cursor`` (run it inside
    ``transaction.atomic``). Returns the inserted rows as dicts (``id`` included), or ``[]``
    when ``returning`` is false."""
    if not events:
        return []
    events_insert_rows(cursor, [event_row(event) for event in events])
    if not returning:
        return []
    cursor.execute(f"SELECT id, {_COLS} FROM {STAGE} ORDER BY timestamp, id")
    names = ["id", *EVENT_COLUMNS]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
