"""The event buffer: events go to a Redis stream first and are landed in PostgreSQL in bulk.

Why: the click redirect and the open pixel must answer in about a millisecond and must not
wait for PostgreSQL, and the sending pipeline produces events by the thousand. So
``events_enqueue`` only XADDs JSON to the stream ``ENGAGE_EVENT_STREAM`` (one entry per
event, one pipelined round trip per call), and ``events_land`` moves them into
``tracking_event`` in batches.

Crash safety (at-least-once into Redis, exactly-once into PostgreSQL):

1. landers read through the consumer group ``ENGAGE_EVENT_GROUP``; an entry read but not
   yet acknowledged stays in the group's pending list;
2. the batch is inserted with ``ON CONFLICT (event_id, timestamp) DO NOTHING RETURNING``
   and the inserted rows are folded into the rollups in the SAME transaction;
3. only after COMMIT are the entries XACKed and XDELed.

A lander that dies anywhere leaves its entries pending; after ``ENGAGE_EVENT_RECLAIM_MS``
another lander takes them over (XAUTOCLAIM) and lands them again: the rows that already
committed conflict and are skipped, so neither the events nor the rollups double.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from analytics import ingest
from tracking.models import EVENT_COLUMNS, EVENT_DEFAULTS

logger = logging.getLogger(__name__)

__all__ = [
    "event_id_new",
    "event_partitions_ahead",
    "event_partitions_ensure",
    "event_record_row",
    "events_enqueue",
    "events_json",
    "events_land",
    "events_redis",
    "events_stamp",
    "events_xadd",
]

# Column defaults (the table's), and how each column is typed in the unnest() insert.
_DEFAULTS = EVENT_DEFAULTS
_JSON_COLUMNS = frozenset({"rcpt_meta", "rcpt_tags", "extra"})
_COLUMN_SET = frozenset(EVENT_COLUMNS)


_FIELD = b"e"
_TRUE_STRINGS = frozenset({"1", "true", "yes", "on"})

# --- event ids ----------------------------------------------------------------------------
# Time-ordered 64-bit ids: milliseconds << 22 | node (10 bits) << 12 | sequence (12 bits).
# The node is random per process (re-drawn after fork), the sequence runs on within a
# millisecond and borrows the next millisecond when it wraps, so one process never repeats
# an id and two processes collide only if they drew the same node AND the same sequence in
# the same millisecond.
_id_lock = threading.Lock()
_id_state = {"node": random.getrandbits(10), "ms": 0, "seq": random.getrandbits(12)}


def _id_reseed() -> None:
    _id_state["node"] = random.getrandbits(10)
    _id_state["seq"] = random.getrandbits(12)


os.register_at_fork(after_in_child=_id_reseed)


def event_id_new(now_ms: int | None = None) -> str:
    """A new unique, time-ordered numeric event id (as SparkPost's, a decimal string)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        state = _id_state
        if ms <= state["ms"]:
            ms = state["ms"]
            seq = (state["seq"] + 1) & 0xFFF
            if seq == 0:
                ms += 1
        else:
            seq = state["seq"]
        state["ms"], state["seq"] = ms, seq
        return str(ms << 22 | state["node"] << 12 | seq)


# --- Redis ----------------------------------------------------------------------------------
_redis_clients: dict[str, redis.Redis] = {}
#: Seconds to connect to Redis, and to wait for one answer (above the lander's longest
#: blocking read, 500 ms): a Redis that hangs holds a tracking hit this long at most, then
#: the hit's events go to PostgreSQL instead (``tracking.outbox.events_record``).
REDIS_CONNECT_TIMEOUT = 0.5
REDIS_TIMEOUT = 2.0


def events_redis() -> redis.Redis:
    """The Redis client of the event buffer (one connection pool per process and URL)."""
    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
    return client


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def events_stamp(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``events`` with ``event_id`` (unique numeric string) and ``timestamp`` (aware
    UTC now, ISO 8601) assigned where absent. An event keeps its id and time wherever it is
    then written (Redis, the outbox, the spool), so writing it twice lands it once.
    ValueError for an event without a ``type``."""
    now: str | None = None
    stamped: list[dict[str, Any]] = []
    for event in events:
        if not event.get("type"):
            raise ValueError("an event needs a type")
        record = dict(event)
        if not record.get("event_id"):
            record["event_id"] = event_id_new()
        if not record.get("timestamp"):
            if now is None:
                now = datetime.now(UTC).isoformat()
            record["timestamp"] = now
        stamped.append(record)
    return stamped


def events_json(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each stamped event as compact JSON (dates as ISO 8601, sets as lists)."""
    return [json.dumps(event, separators=(",", ":"), default=_json_default).encode() for event in events]


def events_enqueue(events: Sequence[dict[str, Any]]) -> None:
    """Buffer ``events`` (dicts keyed by Event column names) for landing in PostgreSQL.

    ``type`` is required; ``event_id`` and ``timestamp`` are assigned when absent
    (:func:`events_stamp`); any other missing column takes its default when landed.
    Keys that are not columns (``msg_size``, ``num_retries``, ``geo_ip``, ...) are kept in
    the ``extra`` JSON column. One Redis round trip per call; never touches PostgreSQL.
    Raises ``redis.RedisError`` when Redis does not take them: callers that must not lose
    an event use ``tracking.outbox.events_record``, which falls back to PostgreSQL.
    """
    if not events:
        return
    events_xadd(events_json(events_stamp(events)))


def events_xadd(payloads: list[bytes]) -> None:
    """XADD JSON-encoded events (:func:`events_json`) to the stream, one round trip."""
    stream = settings.ENGAGE_EVENT_STREAM
    client = events_redis()
    if len(payloads) == 1:
        client.xadd(stream, {_FIELD: payloads[0]})
        return
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.xadd(stream, {_FIELD: payload})
    pipe.execute()


# --- landing --------------------------------------------------------------------------------
def _group_ensure(client: redis.Redis, stream: str, group: str) -> None:
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _read(client: redis.Redis, *, consumer: str, count: int, block_ms: int | None) -> list[tuple[bytes, dict]]:
    """Entries to land: first those another (dead) consumer left pending too long, then new."""
    stream, group = settings.ENGAGE_EVENT_STREAM, settings.ENGAGE_EVENT_GROUP
    for attempt in (1, 2):
        try:
            claimed = client.xautoclaim(
                stream, group, consumer, min_idle_time=settings.ENGAGE_EVENT_RECLAIM_MS, start_id="0-0", count=count
            )
            entries = [(eid, fields) for eid, fields in claimed[1] if fields]
            if len(entries) < count:
                fresh = client.xreadgroup(
                    group, consumer, {stream: ">"}, count=count - len(entries),
                    block=block_ms if block_ms and not entries else None,
                )  # fmt: skip
                for _name, items in fresh or ():
                    entries.extend((eid, fields) for eid, fields in items if fields)
            return entries
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc) or attempt == 2:
                raise
            _group_ensure(client, stream, group)
    return []


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


def event_record_row(record: dict[str, Any]) -> dict[str, Any]:
    """One Event row (column -> value) from a buffered record; unknown keys go to ``extra``."""
    row = {column: record.get(column, _DEFAULTS.get(column)) for column in EVENT_COLUMNS}
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
            row[column] = _DEFAULTS.get(column, "")
        elif (
            column not in _JSON_COLUMNS and column not in ("timestamp", "transactional") and not isinstance(value, str)
        ):
            row[column] = str(value)
    if not row["recipient_domain"] and "@" in row["rcpt_to"]:
        row["recipient_domain"] = row["rcpt_to"].rpartition("@")[2].lower()
    return row


def event_partitions_ensure(days: Iterable[date]) -> None:
    """Create the daily partitions of ``tracking_event`` for ``days`` when missing.

    Each in its own savepoint: creating a partition for a day that already has rows in the
    DEFAULT partition fails, and then those rows (and the new ones) simply stay in DEFAULT
    rather than blocking the lander. The periodic task calls this for today and tomorrow so
    the lander rarely has to.
    """
    with connection.cursor() as cursor:
        for day in sorted(set(days)):
            try:
                with transaction.atomic():
                    cursor.execute("SELECT engage_event_partition(%s)", [day])
            except DatabaseError as exc:
                logger.warning("event partition for %s not created (events stay in DEFAULT): %s", day, exc)


def _insert(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert rows (skipping duplicates) and fold the inserted ones into the rollups and
    webhook queues, in one transaction; returns the inserted rows as dicts (with ``id``)."""
    with transaction.atomic(), connection.cursor() as cursor:
        return ingest.events_insert(cursor, rows)


def events_land(*, consumer: str, max_events: int = 5000, block_ms: int | None = None) -> int:
    """Move up to ``max_events`` buffered events into PostgreSQL; returns how many entries
    were landed (acknowledged), duplicates of already-landed events included.

    ``consumer`` names this lander in the consumer group (stable per process, e.g.
    host-pid). ``block_ms`` waits that long for new events when there are none (for a
    dedicated loop). See the module docstring for why this order is crash safe.
    """
    client = events_redis()
    entries = _read(client, consumer=consumer, count=max_events, block_ms=block_ms)
    if not entries:
        return 0
    rows: list[dict[str, Any]] = []
    for entry_id, fields in entries:
        try:
            rows.append(event_record_row(json.loads(fields[_FIELD])))
        except (KeyError, TypeError, ValueError) as exc:
            # A malformed entry would block every batch it is in: log it and drop it.
            logger.error("dropping unreadable event entry %r: %s (%r)", entry_id, exc, fields)
    if rows:
        event_partitions_ensure({row["timestamp"].date() for row in rows})
        _insert(rows)
    _ack(client, [entry_id for entry_id, _fields in entries])
    return len(entries)


def _ack(client: redis.Redis, ids: list[bytes]) -> None:
    """Acknowledge and delete landed entries (only ever after their rows committed)."""
    stream, group = settings.ENGAGE_EVENT_STREAM, settings.ENGAGE_EVENT_GROUP
    pipe = client.pipeline(transaction=True)
    pipe.xack(stream, group, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()


def event_partitions_ahead(now: datetime | None = None) -> None:
    """Create today's and tomorrow's partitions (UTC) before events need them."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    event_partitions_ensure([today, today + timedelta(days=1)])
