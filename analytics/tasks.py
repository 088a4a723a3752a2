"""Celery tasks of the analytics app: thin, idempotent, named.

Every webhook task runs on ``WEBHOOK_QUEUE`` (its own worker: scripts/Procfile,
docker-compose.yml), beat's dispatch included: cutting batches grows with the number of
webhooks and POSTs wait on other people's servers, so neither may take a slot of the send
worker, which serves the default queue. The queue is set on the task, so it holds for
``delay()`` and for beat (which runs the registered task with its entry's options).
"""

from __future__ import annotations

from celery import shared_task

from analytics import webhooks

WEBHOOK_QUEUE = "webhooks"


@shared_task(name="analytics.webhooks_dispatch", queue=WEBHOOK_QUEUE, ignore_result=True)
def webhooks_dispatch() -> None:
    """Beat: cut the batches that are due from the feed, expire the abandoned ones past
    their retry window, and queue a delivery per due batch."""
    webhooks.webhook_batches_build()
    webhooks.webhook_batches_expire()
    for batch_id in webhooks.webhook_batches_due():
        webhook_batch_deliver.delay(batch_id)


@shared_task(name="analytics.webhook_batch_deliver", queue=WEBHOOK_QUEUE, ignore_result=True)
def webhook_batch_deliver(batch_id: str) -> None:
    """POST one batch; the retry schedule lives on the batch row (next_attempt_at)."""
    webhooks.webhook_batch_deliver(batch_id=batch_id)
