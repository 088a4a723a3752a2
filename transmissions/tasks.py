"""Celery tasks of transmissions: thin, named, ids in, retry policy here.

All of them are safe to run twice (claims are conditional UPDATEs), which is what
``acks_late`` + ``reject_on_worker_lost`` redelivery and the beat re-enqueues rely on.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings

from transmissions.delivery import RelayUnavailable
from transmissions.models import Message
from transmissions.selectors import database_now
from transmissions.sending import (
    ChunkResult,
    chunk_send,
    delayed_orphans_find,
    group_send,
    message_retry,
    stale_claims_recover,
)
from transmissions.services import (
    GENERATE_GROUP_TASK,
    GENERATE_TASK,
    transmission_finish_if_done,
    transmission_start_generation,
    transmissions_due,
    transmissions_finish_group,
    transmissions_generation_enqueue,
    transmissions_start_group,
    transmissions_unqueued_injections,
)

log = logging.getLogger(__name__)


def backoff_seconds(retries: int) -> int:
    """Exponential backoff: base, 2×base, 4×base … capped (ENGAGE_RETRY_* settings)."""
    return min(settings.ENGAGE_RETRY_BASE_SECONDS * (2 ** max(retries, 0)), settings.ENGAGE_RETRY_MAX_SECONDS)


def _token(task_id: str | None) -> str:
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{(task_id or '')[:8]}:{uuid.uuid4().hex[:8]}"


@shared_task(name=GENERATE_TASK, acks_late=True, reject_on_worker_lost=True)
def transmission_generate_task(transmission_id: int) -> int:
    """Start generation (``transmissions.generate``): Generating, then one send task per chunk
    with queued messages."""
    chunks = transmission_start_generation(transmission_id=transmission_id)
    for chunk in chunks:
        chunk_send_task.delay(transmission_id, chunk)
    return len(chunks)


@shared_task(bind=True, name=GENERATE_GROUP_TASK, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def transmission_generate_group_task(self: Task, transmission_ids: list[int]) -> int:
    """Start and send a group of transmissions (``transmissions.generate_group``: the SMTP
    listener queues one per stored group, each transmission a message or a few).

    The SMTP ones are started in one statement (``transmissions_start_group``), their
    messages claimed, checked, sent over one relay session and recorded as one batch
    (``transmissions.sending.group_send``), and finished in one statement
    (``transmissions_finish_group``). Any transmission that is left unfinished (another
    kind, a chunk with a lost or stale claim, messages another execution holds) goes the
    way of ``transmissions.generate``, its chunks sent here: a chunk whose relay is
    unavailable there goes to ``transmissions.send_chunk``, which owns its retry policy.
    When the relay is unavailable during the batch, the unsent messages were given back and
    this task is retried after its backoff. Safe to run twice. Returns the number of
    messages whose outcome was recorded here."""
    token = _token(self.request.id)
    started = transmissions_start_group(transmission_ids=transmission_ids)
    batch = [transmission.id for transmission in started]
    try:
        result = group_send(transmissions=started, token=token)
    except RelayUnavailable as exc:
        transmissions_finish_group(transmission_ids=batch)  # those the batch completed
        countdown = backoff_seconds(self.request.retries)
        log.warning("transmissions %s: %s; the group is retried in %ss", batch[:10], exc.reason, countdown)
        raise self.retry(countdown=countdown) from None
    _delayed_retry(result)
    ended = result.delivered + result.bounced + result.generation_failed + len(result.delayed or [])
    finished = transmissions_finish_group(transmission_ids=batch) if batch else set()
    for transmission_id in transmission_ids:
        if transmission_id in finished:
            continue
        for chunk in transmission_start_generation(transmission_id=transmission_id):
            try:
                chunked = chunk_send(transmission_id=transmission_id, chunk=chunk, token=token)
            except RelayUnavailable as exc:
                log.warning("transmission %s chunk %s: %s; retried by its own task", transmission_id, chunk, exc.reason)
                chunk_send_task.apply_async((transmission_id, chunk), countdown=backoff_seconds(0))
                continue
            _delayed_retry(chunked)
            ended += chunked.delivered + chunked.bounced + chunked.generation_failed + len(chunked.delayed or [])
    return ended


def _delayed_retry(result: ChunkResult) -> None:
    """One retry task per delayed message of ``result``, after its backoff."""
    for pk, attempts in zip(result.delayed or [], result.delayed_attempts or [], strict=True):
        message_retry_task.apply_async((pk,), countdown=backoff_seconds(attempts - 1))


@shared_task(bind=True, name="transmissions.send_chunk", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def chunk_send_task(self: Task, transmission_id: int, chunk: int) -> dict:
    try:
        result = chunk_send(transmission_id=transmission_id, chunk=chunk, token=_token(self.request.id))
    except RelayUnavailable as exc:
        countdown = backoff_seconds(self.request.retries)
        log.warning("transmission %s chunk %s: %s; retrying in %ss", transmission_id, chunk, exc.reason, countdown)
        raise self.retry(countdown=countdown) from None
    _delayed_retry(result)
    return {
        "delivered": result.delivered,
        "bounced": result.bounced,
        "generation_failed": result.generation_failed,
        "delayed": len(result.delayed or []),
    }


@shared_task(
    bind=True, name="transmissions.retry_message", acks_late=True, reject_on_worker_lost=True, max_retries=None
)
def message_retry_task(self: Task, message_pk: int) -> str:
    """Retry a delayed (4xx) message with exponential backoff until it is delivered, bounces,
    or reaches ENGAGE_RETRY_MAX_ATTEMPTS (then it bounces)."""
    try:
        outcome, attempts = message_retry(message_pk=message_pk, token=_token(self.request.id))
    except RelayUnavailable:
        raise self.retry(countdown=backoff_seconds(self.request.retries)) from None
    if outcome == "delayed":
        raise self.retry(countdown=backoff_seconds(attempts - 1))
    if outcome != "skipped":
        transmission_id = Message.objects.filter(pk=message_pk).values_list("transmission_id", flat=True).first()
        if transmission_id is not None:
            transmission_finish_if_done(transmission_id=transmission_id)
    return outcome


@shared_task(name="transmissions.start_due", expires=30)
def transmissions_start_due_task() -> int:
    """Beat: start scheduled transmissions whose time has come (and stalled immediate ones),
    and SMTP injections whose group task may have been lost.

    An injection never claimed a minute after it was stored either lost its task (the broker
    down, the listener killed before it queued) or waits behind others. Queueing every such
    injection again at each tick queued a task per waiting injection every few seconds
    (tens of thousands a tick in a long backlog). So: all of them once no task waits in the
    queue (their tasks, if they had any, were taken); while tasks wait, each whose wait
    crossed a multiple of :data:`REQUEUE_PERIOD` seconds since the previous sweep (chosen
    in the statement, in the database's clock; the previous sweep's time kept in the cache:
    :func:`_last_sweep`). In group tasks of :data:`UNQUEUED_GROUP` ids, as the listener
    queues them; a group the broker does not take ends the sweep (the next tick tries again).

    Its ticks go to beat's own queue (``HOUSEKEEPING_QUEUE``, its own worker), not the one
    they measure: in that one, a backlog longer than a tick's expiry (two
    ``ENGAGE_SCHEDULER_INTERVAL``) dropped every tick until it drained."""
    due = transmissions_due(unqueued_injections=False)
    for transmission_id in due:
        transmission_generate_task.delay(transmission_id)
    now = database_now()
    previous = _last_sweep(now)  # this sweep's time kept either way: the next one counts from it
    since = None if generation_queue_empty() else previous
    lost = transmissions_unqueued_injections(now=now, crossed_since=since, period_seconds=REQUEUE_PERIOD)
    for start in range(0, len(lost), UNQUEUED_GROUP):
        if not transmissions_generation_enqueue(transmission_ids=lost[start : start + UNQUEUED_GROUP]):
            break
    return len(due) + len(lost)


#: While tasks wait in the queue, seconds between two re-queueings of one waiting injection.
REQUEUE_PERIOD = 600
#: Ids a group task of the scheduler's holds (the listener's ``max_group``).
UNQUEUED_GROUP = 64
_LAST_SWEEP = "transmissions:start_due:last_sweep"


def _last_sweep(now: datetime) -> datetime:
    """The previous sweep's time (the cache keeps it; a sweep of an empty queue counts), and
    ``now`` kept as this one's. Without it (the first sweep, the cache down), one ``ENGAGE_SCHEDULER_INTERVAL``
    before ``now``."""
    from django.core.cache import cache

    try:
        last = cache.get(_LAST_SWEEP)
        cache.set(_LAST_SWEEP, now.timestamp(), timeout=REQUEUE_PERIOD * 2)
    except Exception:  # redis' errors: as without a previous sweep
        last = None
    if not isinstance(last, float) or last >= now.timestamp():
        return now - timedelta(seconds=settings.ENGAGE_SCHEDULER_INTERVAL)
    return datetime.fromtimestamp(last, tz=now.tzinfo)


def generation_queue_empty() -> bool:
    """Whether no task waits in the queue the generation tasks go to (Celery's default queue;
    tasks a worker has taken are not counted; a queue not declared yet holds none). When the
    broker cannot say, True: queueing an injection twice is harmless (a message is sent under
    its claim alone)."""
    try:
        with current_app.connection_for_read() as connection:
            channel: Any = connection.default_channel
            declared = channel.queue_declare(queue=current_app.conf.task_default_queue, passive=True)
        return int(declared.message_count) == 0
    except Exception as exc:  # the queue not declared (no worker yet), the broker down...
        log.debug("the generation queue's length is unknown (%s): taken as empty", exc)
        return True


@shared_task(name="transmissions.recover_stale", expires=30)
def transmissions_recover_stale_task() -> int:
    """Beat: re-queue messages claimed by dead workers and re-enqueue their chunks, and
    re-enqueue retries of delayed messages whose retry task was lost."""
    pairs, generating = stale_claims_recover()
    for transmission_id, chunk in sorted(pairs):
        chunk_send_task.delay(transmission_id, chunk)
    for message_pk in delayed_orphans_find():
        message_retry_task.delay(message_pk)
    for start in range(0, len(generating), FINISH_BATCH):  # one statement a batch, not one a transmission
        transmissions_finish_group(transmission_ids=generating[start : start + FINISH_BATCH])
    return len(pairs)


#: Generating transmissions checked for completion in one statement by the recovery.
FINISH_BATCH = 500
