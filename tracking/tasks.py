"""Celery tasks of the tracking app: thin wrappers around ``tracking.events``."""

from __future__ import annotations

import os
import socket
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from tracking.events import event_partitions_ahead, events_land
from tracking.retention import event_retention_apply, rollup_retention_apply

LAND_SECONDS = 1.0


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
        landed += events_land(consumer=consumer, block_ms=min(remaining_ms, 200))
    return landed


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
