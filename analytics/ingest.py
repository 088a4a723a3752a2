"""The bulk insert path for events: COPY into a staging table, INSERT ... ON CONFLICT DO
NOTHING into ``tracking_event``, and fold exactly the inserted rows into the rollups, all
on the caller's cursor (so in the caller's transaction).

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
  FOR d IN SELECT DISTINCT (timestamp AT TIME ZONE 'UTC')::date FROM {STAGE} LOOP
    IF to_regclass('tracking_event_' || to_char(d, 'YYYYMMDD')) IS NULL THEN
      BEGIN
        PERFORM engage_event_partition(d);
      EXCEPTION WHEN others THEN NULL;  -- rows of that day already sit in DEFAULT: they stay there
      END;
    END IF;
  END LOOP;
END $$"""

_INSERT = f"""
WITH ins AS (
  INSERT INTO tracking_event ({_COLS}) SELECT {_COLS} FROM {STAGE}
  ON CONFLICT (event_id, timestamp) DO NOTHING
  RETURNING id, timestamp, type, message_id, campaign_id, template_id, recipient_domain, rcpt_to,
            bounce_class, target_link_name, target_link_url
)
INSERT INTO {rollups.LANDED} ({", ".join(rollups.LANDED_COLUMNS)})
SELECT id, timestamp, type, message_id, left(campaign_id, {rollups.KEY_MAX}), left(template_id, {rollups.KEY_MAX}),
       left(coalesce(nullif(recipient_domain, ''), lower(substring(rcpt_to from '[^@]*$'))), {rollups.DOMAIN_MAX}),
       bounce_class, left(coalesce(nullif(target_link_name, ''), target_link_url), {rollups.LINK_NAME_MAX}),
       left(target_link_url, {rollups.LINK_URL_MAX})
FROM ins"""


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


def events_insert_rows(cursor: Any, rows: Iterable[Sequence[Any]]) -> int:
    """Land rows already in ``EVENT_COLUMNS`` order (JSON columns wrapped in ``Jsonb``);
    returns how many were new. Duplicates of landed ``(event_id, timestamp)`` are skipped
    and not counted, so a batch may be landed twice."""
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} AS SELECT {_COLS} FROM tracking_event WITH NO DATA")
    cursor.execute(f"TRUNCATE {STAGE}")
    with cursor.copy(f"COPY {STAGE} ({_COLS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(_ENSURE_PARTITIONS)
    # A 50k batch's CTE tuplestore, hash aggregates and sorts overflow the default 4 MB
    # work_mem and spill to temp files; raise it for these statements only (transaction-
    # local, restored before returning so the caller's later statements are unaffected).
    cursor.execute(f"SELECT current_setting('work_mem'), set_config('work_mem', '{WORK_MEM}', true)")
    previous_work_mem = cursor.fetchone()[0]
    rollups.landed_prepare(cursor)
    cursor.execute(_INSERT)
    inserted = cursor.rowcount
    rollups.rollups_from_landed(cursor)
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
    cursor.execute(
        f"SELECT e.id, {', '.join('e.' + c for c in EVENT_COLUMNS)} FROM tracking_event e "
        f"JOIN {rollups.LANDED} l ON e.id = l.id AND e.timestamp = l.timestamp ORDER BY e.timestamp, e.id"
    )
    names = ["id", *EVENT_COLUMNS]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
