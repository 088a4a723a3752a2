"""Celery tasks of the tracking app: thin wrappers around ``tracking.events``."""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from tracking.events import event_partitions_ahead, events_land
from tracking.outbox import outbox_land, spool_replay
from tracking.retention import event_retention_apply, rollup_retention_apply

LAND_SECONDS = 1.0
log = logging.getLogger(__name__)


def lander_name() -> str:
    """This process's consumer name in the landers' group (stable for its lifetime, so its
    pending entries are its own until it dies and another lander reclaims them)."""
    return f"{socket.gethostname()}-{os.getpid()}"


@shared_task(name="tracking.land_events", ignore_result=True)
def land_events() -> int:
    """Land buffered events for about a second (beat runs this every second)."""
    deadline = time.monotonic() + LAND_SECONDS
    landed = 0
    consumer = lander_name()
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            break
        moved = land_once(consumer=consumer, block_ms=min(remaining_ms, 200))
        if moved is None:  # PostgreSQL or Redis is down: the next beat tries again
            break
        landed += moved
    return landed


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
        spool_replay()
        if not failed:
            moved += events_land(consumer=consumer, max_events=max_events, block_ms=None if moved else block_ms)
    except (DatabaseError, redis.RedisError) as exc:
        log.warning("landing buffered events paused: %s", exc)
        connection.close()
        failed = True
    return None if failed else moved


@shared_task(name="tracking.event_partitions", ignore_result=True)
def event_partitions() -> None:
    """Create today's and tomorrow's event partitions ahead of the events."""
    event_partitions_ahead()


@shared_task(name="tracking.retention", ignore_result=True)
def retention() -> None:
    """Drop raw events and rollups past their retention (beat runs this hourly)."""
    now = timezone.now()
    event_retention_apply(now=now, keep_days=settings.ENGAGE_EVENT_RETENTION_DAYS)
    rollup_retention_apply(now=now, keep_days=settings.ENGAGE_ROLLUP_RETENTION_DAYS)
