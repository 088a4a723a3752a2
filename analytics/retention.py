"""Retention: raw events are kept ``ENGAGE_EVENT_RETENTION_DAYS`` (default 10, SparkPost's
event retention), rollups ``ENGAGE_ROLLUP_RETENTION_DAYS`` (default 183, about 6 months).

Raw events go a whole day partition at a time (DROP TABLE of a detached partition is
instant and leaves no dead rows to vacuum); only the DEFAULT partition, which holds rows of
days that had no partition yet, is trimmed with a DELETE.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db import connection, transaction

logger = logging.getLogger(__name__)

_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'tracking_event' AND c.relname ~ '^tracking_event_[0-9]{8}$'
"""

# Rollup tables and the column that dates each row.
_ROLLUPS = (
    ("analytics_rollup_hourly", "hour"),
    ("analytics_rollup_daily", "day"),
    ("analytics_link_rollup_hourly", "hour"),
    ("analytics_message_link_click", "first_click"),
)


def partitions_expired(names: list[str], *, cutoff: date) -> list[str]:
    """The day partitions (``tracking_event_YYYYMMDD``) that hold only days before ``cutoff``."""
    return sorted(name for name in names if date.fromisoformat(name[-8:]) < cutoff)


def event_retention_apply(*, now: datetime, keep_days: int) -> list[str]:
    """Drop the event partitions of days older than ``keep_days``; returns their names."""
    cutoff = (now - timedelta(days=keep_days)).date()
    with connection.cursor() as cursor:
        cursor.execute(_PARTITIONS)
        expired = partitions_expired([row[0] for row in cursor.fetchall()], cutoff=cutoff)
        for name in expired:
            with transaction.atomic():
                cursor.execute(f'ALTER TABLE tracking_event DETACH PARTITION "{name}"')
                cursor.execute(f'DROP TABLE "{name}"')
        cursor.execute("DELETE FROM tracking_event_default WHERE timestamp < %s", [cutoff])
    if expired:
        logger.info("event retention: dropped %s", ", ".join(expired))
    return expired


def rollup_retention_apply(*, now: datetime, keep_days: int) -> int:
    """Delete rollup rows (and per-message first-seen rows) older than ``keep_days``."""
    cutoff = now - timedelta(days=keep_days)
    deleted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table, column in _ROLLUPS:
            cursor.execute(f"DELETE FROM {table} WHERE {column} < %s", [cutoff])
            deleted += cursor.rowcount
        cursor.execute(
            "DELETE FROM analytics_message_engagement WHERE GREATEST(first_open, first_initial_open, "
            "first_click, first_confirmed) < %s",
            [cutoff],
        )
        deleted += cursor.rowcount
    return deleted
