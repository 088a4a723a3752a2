"""Celery tasks of the analytics app: thin, idempotent, named.

A webhook POST runs on ``WEBHOOK_QUEUE`` (its own worker: scripts/Procfile,
docker-compose.yml): it waits on other people's servers, so it may take no slot of the send
worker. The queue is set on the task, so it holds for ``delay()``. Beat's tasks, the webhook
dispatch among them, go to ``settings.HOUSEKEEPING_QUEUE`` (``CELERY_TASK_ROUTES``; its own
worker): on the webhooks queue the dispatch tick waited behind slow POSTs (an attacker's
finding), and a route named on the task would win over that setting.
"""

from __future__ import annotations

import time
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from analytics import webhooks
from analytics.landing import event_partitions_ahead, land_once, lander_name
from analytics.retention import event_retention_apply, rollup_retention_apply

LAND_SECONDS = 1.0

WEBHOOK_QUEUE = "webhooks"


@shared_task(name="analytics.webhooks_dispatch", ignore_result=True)
def webhooks_dispatch() -> None:
    """Beat: cut the batches that are due from the feed, expire the abandoned ones past
    their retry window, and queue a delivery per due batch."""
    webhooks.webhook_batches_build()
    webhooks.webhook_batches_expire()
    for batch_id, lease in webhooks.webhook_batches_lease_due():
        webhook_batch_deliver.delay(batch_id, lease.isoformat())


@shared_task(name="analytics.webhook_batch_deliver", queue=WEBHOOK_QUEUE, ignore_result=True)
def webhook_batch_deliver(batch_id: str, lease: str | None = None) -> None:
    """POST one batch; the retry schedule lives on the batch row (next_attempt_at)."""
    webhooks.webhook_batch_deliver(batch_id=batch_id, lease=datetime.fromisoformat(lease) if lease else None)


# --- landing and retention: beat's queue (settings.HOUSEKEEPING_QUEUE) ---------------------
@shared_task(name="analytics.land_events", ignore_result=True)
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


@shared_task(name="analytics.event_partitions", ignore_result=True)
def event_partitions() -> None:
    """Create today's and tomorrow's event partitions ahead of the events."""
    event_partitions_ahead()


@shared_task(name="analytics.retention", ignore_result=True)
def retention() -> None:
    """Drop raw events and rollups past their retention (beat runs this hourly)."""
    now = timezone.now()
    event_retention_apply(now=now, keep_days=settings.ENGAGE_EVENT_RETENTION_DAYS)
    rollup_retention_apply(now=now, keep_days=settings.ENGAGE_ROLLUP_RETENTION_DAYS)
