"""Celery tasks of the analytics app: thin, idempotent, named."""

from __future__ import annotations

from celery import shared_task

from analytics import webhooks


@shared_task(name="analytics.webhooks_dispatch", ignore_result=True)
def webhooks_dispatch() -> None:
    """Beat: make the batches that are due, expire the abandoned ones past their retry
    window, and queue a delivery per due batch."""
    webhooks.webhook_batches_build()
    webhooks.webhook_batches_expire()
    for batch_id in webhooks.webhook_batches_due():
        webhook_batch_deliver.delay(batch_id)


@shared_task(name="analytics.webhook_batch_deliver", ignore_result=True)
def webhook_batch_deliver(batch_id: str) -> None:
    """POST one batch; the retry schedule lives on the batch row (next_attempt_at)."""
    webhooks.webhook_batch_deliver(batch_id=batch_id)
