"""Landing: events move from where they were recorded into ``tracking_event`` (SPEC A.3).

Three sources, landed by :func:`land_once` (beat's ``analytics.land_events`` every second,
or ``manage.py land_events``), each exactly once into PostgreSQL:

* **the event outbox** (``tracking_event_outbox``: the send path's events, written with the
  message state, and tracking hits' while Redis was down): :func:`outbox_land` deletes rows
  (``FOR UPDATE SKIP LOCKED``) and inserts their events in one transaction;
* **the spool** (hits' events while Redis and PostgreSQL were both down):
  ``tracking.outbox.spool_replay`` moves them into the Redis stream;
* **the Redis stream** ``ENGAGE_EVENT_STREAM``: :func:`events_land` reads through the
  consumer group ``ENGAGE_EVENT_GROUP``; an entry read but not yet acknowledged stays in the
  group's pending list; the batch is inserted with ``ON CONFLICT (event_id, timestamp) DO
  NOTHING`` and folded into the rollups and the webhook feed in the SAME transaction; only
  after COMMIT are the entries XACKed and XDELed. A lander that dies anywhere leaves its
  entries pending; after ``ENGAGE_EVENT_RECLAIM_MS`` another takes them over (XAUTOCLAIM)
  and lands them again: rows that already committed conflict and are skipped, so neither
  the events nor the rollups double.

Every event was stamped (``event_id``, ``timestamp``) before its first write, so one that
reached two sources lands once.

Tracking consent withdrawn applies to mail already sent (SPEC A.5): a hit on an older link of a
recipient whose consent is now ``denied`` still redirects (or answers its GIF): the tracking
views never read PostgreSQL. It is here, when a batch lands, that its engagement events
(``open``, ``initial_open``, ``click``: ``mailcore.events`` category ``track_event``; never the
unsubscribes) are dropped for recipients the register holds as ``denied`` now, by
:func:`_consented`, one query per landed batch. Such an event is never stored, so it reaches
no metric, search or webhook. A change of consent applies to the hits landed after it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from analytics import ingest
from consent.selectors import consent_timelines
from mailcore.addresses import mailbox_key
from mailcore.consent import DENIED, consent_at
from mailcore.events import names_in
from tracking.events import EVENT_FIELD, events_redis
from tracking.hitlog import hits_flush
from tracking.outbox import spool_replay

log = logging.getLogger(__name__)

__all__ = [
    "event_partitions_ahead",
    "event_partitions_ensure",
    "events_land",
    "land_once",
    "lander_name",
    "outbox_land",
]


#: The events a recipient's tracking consent governs (the unsubscribes are not tracking).
_ENGAGEMENT = names_in("track_event")


def _denied_then(row: dict[str, Any], timelines: dict[str, list[tuple[Any, str]]]) -> bool:
    """Whether ``row`` is an engagement event made while its recipient's consent was denied."""
    if row["type"] not in _ENGAGEMENT or not row["rcpt_to"]:
        return False
    timeline = timelines.get(mailbox_key(row["rcpt_to"]))
    return timeline is not None and consent_at(timeline, row["timestamp"]) == DENIED


def _consented(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without the engagement events made while their recipient's consent in the
    register was ``denied`` (judged at the event's ``timestamp``, so a hit made during a
    withdrawal stays dropped if consent is granted again before it lands, and one made before
    a withdrawal is kept): one query (none when the batch holds no engagement event)."""
    engaged = {row["rcpt_to"] for row in rows if row["type"] in _ENGAGEMENT and row["rcpt_to"]}
    if not engaged:
        return rows
    timelines = consent_timelines(addresses=engaged)
    if not timelines:
        return rows
    kept = [row for row in rows if not _denied_then(row, timelines)]
    log.info("dropped %d engagement event(s) of recipients who denied tracking", len(rows) - len(kept))
    return kept


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
            # redis-py types every reply as "Awaitable | Any" (one signature for sync and async)
            claimed: Any = client.xautoclaim(
                stream, group, consumer, min_idle_time=settings.ENGAGE_EVENT_RECLAIM_MS, start_id="0-0", count=count
            )
            entries = [(eid, fields) for eid, fields in claimed[1] if fields]
            if len(entries) < count:
                fresh: Any = client.xreadgroup(
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
                log.warning("event partition for %s not created (events stay in DEFAULT): %s", day, exc)


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
    dedicated loop). See the module docstring for why this order is crash safe. A process
    that also serves tracking hits (a test, a single-process run) ships its own hit log into
    the stream first (``tracking.hitlog``; a no-op in a worker that serves none).
    """
    hits_flush()
    client = events_redis()
    entries = _read(client, consumer=consumer, count=max_events, block_ms=block_ms)
    if not entries:
        return 0
    rows: list[dict[str, Any]] = []
    for entry_id, fields in entries:
        try:
            rows.append(ingest.event_row(json.loads(fields[EVENT_FIELD])))
        except Exception as exc:  # KeyError, TypeError, ValueError, AttributeError, OverflowError, ...
            # A malformed entry would block every batch it is in (XAUTOCLAIM hands it to
            # every lander again): log it and drop it.
            log.error("dropping unreadable event entry %r: %s (%r)", entry_id, exc, fields)
    rows = _consented(rows)
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


# --- the outbox ---------------------------------------------------------------------------
# The rows are picked once (a MATERIALIZED CTE): as an IN subquery with LIMIT and SKIP
# LOCKED the planner may rescan it and take more than LIMIT rows (transmissions.sending).
_OUTBOX_TAKE = """
WITH picked AS MATERIALIZED (SELECT id FROM tracking_event_outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
DELETE FROM tracking_event_outbox WHERE id IN (SELECT id FROM picked)
RETURNING payload"""


def outbox_land(*, max_rows: int = 1000) -> int:
    """Move up to ``max_rows`` outbox rows into ``tracking_event``; returns how many events
    they held. One transaction: the rows are deleted and their events inserted (duplicates
    of landed events skipped, rollups and webhook feeds updated) together. Concurrent
    landers take disjoint rows (SKIP LOCKED). Raises DatabaseError when PostgreSQL fails
    (nothing is taken then)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_OUTBOX_TAKE, [max_rows])
        records = [record for (payload,) in cursor.fetchall() for record in _loads(payload)]
        rows = []
        for record in records:
            try:
                rows.append(ingest.event_row(record))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("dropping an unreadable outbox event: %s (%r)", exc, record)
        rows = _consented(rows)
        if rows:
            ingest.events_insert(cursor, rows, returning=False)
    return len(rows)


def _loads(payload: Any) -> list[dict[str, Any]]:
    value = json.loads(payload) if isinstance(payload, str | bytes) else payload
    return value if isinstance(value, list) else [value]


# --- one round over every source ---------------------------------------------------------
def lander_name() -> str:
    """This process's consumer name in the landers' group (stable for its lifetime, so its
    pending entries are its own until it dies and another lander reclaims them)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def land_once(*, consumer: str, block_ms: int | None, max_events: int = 5000) -> int | None:
    """One landing round: the outbox, the spool, then the Redis stream (waiting up to
    ``block_ms`` there when nothing else was found). Each source is tried whatever the
    others do (the outbox lands while Redis is down). Returns the events moved, or None
    when PostgreSQL or Redis failed (logged; what was taken stays where it was)."""
    moved, failed = 0, False
    try:
        moved += outbox_land(max_rows=max_events)
    except DatabaseError as exc:
        log.warning("landing the event outbox paused: %s", exc)
        connection.close()
        failed = True
    try:
        spool_replay()  # an odd spool entry is skipped and logged inside: it never stops landing
    except Exception:
        log.exception("replaying the event spool failed; landing goes on")
    try:
        if not failed:
            moved += events_land(consumer=consumer, max_events=max_events, block_ms=None if moved else block_ms)
    except (DatabaseError, redis.RedisError) as exc:
        log.warning("landing buffered events paused: %s", exc)
        connection.close()
        failed = True
    return None if failed else moved
