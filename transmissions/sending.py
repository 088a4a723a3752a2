"""Claim, generate and hand off messages, with a state per message (crash safety).

Delivery guarantee, and its one residual window
-----------------------------------------------
Messages are claimed in small batches with one conditional UPDATE
(``queued → sending``, ``claimed_by`` = this execution, ``claimed_at`` = now). Each message
is then generated and handed to the relay, and its outcome is written before the chunk
task is acknowledged (``acks_late``): ``failed`` after a 5xx or a render error and
``deferred`` after a 4xx immediately, one UPDATE each; ``sent`` after a 2xx in small
groups, one ``UPDATE ... WHERE id = ANY(...)`` per group of at most :data:`SENT_GROUP`
(8) messages, written while the next body is in flight once that body would make the group
full, before the next SMTP transaction once the oldest unrecorded ``250`` is
:data:`SENT_GROUP_SECONDS` (50 ms) old, before every new claim, and when the chunk ends or
fails.

If the worker dies (SIGKILL, OOM, power), the task is redelivered (``acks_late`` +
``reject_on_worker_lost``, or Redis' visibility timeout), and rows still ``sending``
whose claim went stale (``ENGAGE_SEND_CLAIM_TIMEOUT``, heart-beaten while a batch runs)
are claimed again, by the redelivered task or after the recovery beat task re-queues them.
``sent`` rows are never touched again, so **nothing that was recorded as handed off is
sent twice, and nothing claimed is lost**.

The residual at-least-once window is the time between the end of DATA (the body is on
its way; the next message is generated while the relay answers) and the commit of the
UPDATE that records that message's group as ``sent``: with a healthy relay a few
milliseconds (at most :data:`SENT_GROUP` messages' hand-off plus one local round trip; one
relay transaction longer if that transaction stalls). A worker killed inside it leaves
those messages ``sending`` and they are sent again: the body in flight and the unrecorded
group together are never more than :data:`SENT_GROUP`, so **at most :data:`SENT_GROUP`
messages per killed worker process** are repeated (tests/e2e checks the bound). The
grouping is what pays for one PostgreSQL round trip per 8 messages instead of one per
message. The same holds for a connection lost after the body was sent
(``RelayUnavailable.handed_off_maybe``). State UPDATEs run with ``synchronous_commit =
off``: that does not widen the window for a worker crash (the commit is visible to every
session at once), only for a PostgreSQL crash, where the last ~``wal_writer_delay`` (200
ms) of ``sent`` marks can be lost and those messages resent. Events are buffered after the
state they report is written (one Redis round trip per group), so a crash in between can
lose the ``injection``/``delivery`` events of one group but never duplicates a send.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from tracking.events import events_enqueue
from transmissions.delivery import RelayResult, RelayUnavailable, bounce_class, relay
from transmissions.generation import Built, GenerationFailed, Prepared, event_fields, message_generate, prepared_get
from transmissions.models import TransmissionState
from transmissions.services import transmission_finish_if_done

log = logging.getLogger(__name__)

__all__ = [
    "SENT_GROUP",
    "SENT_GROUP_SECONDS",
    "ChunkResult",
    "chunk_send",
    "deferred_orphans_find",
    "message_retry",
    "stale_claims_recover",
]

# The most messages a killed worker process can have handed off but not recorded (1 = only
# the one in flight; larger groups trade that window for throughput, see bench/RESULTS.md).
SENT_GROUP = settings.ENGAGE_SEND_RECORD_GROUP
SENT_GROUP_SECONDS = 0.05  # the oldest unrecorded 250 is recorded before the next hand-off after this

_CLAIM_SQL = """
UPDATE transmissions_message m
   SET state = 'sending', claimed_by = %(token)s, claimed_at = now(), attempts = m.attempts + 1
 WHERE m.id IN (SELECT id FROM transmissions_message
                 WHERE transmission_id = %(tx)s AND chunk = %(chunk)s
                   AND (state = 'queued'
                        OR (state = 'sending' AND claimed_at < now() - make_interval(secs => %(stale)s)))
                 ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
   AND (m.state = 'queued' OR (m.state = 'sending' AND m.claimed_at < now() - make_interval(secs => %(stale)s)))
RETURNING m.id, m.message_id, m.recipient, m.attempts
"""
_CLAIM_ONE_SQL = """
UPDATE transmissions_message
   SET state = 'sending', claimed_by = %(token)s, claimed_at = now(), attempts = attempts + 1
 WHERE id = %(id)s AND state = 'deferred'
RETURNING id, message_id, recipient, attempts, transmission_id
"""
_FINISH_ONE_SQL = (
    "UPDATE transmissions_message SET state = %s, finished_at = now(), last_error = %s, claimed_by = '' WHERE id = %s"
)
_FINISH_SENT_SQL = (
    "UPDATE transmissions_message SET state = 'sent', finished_at = now(), last_error = '', claimed_by = '' "
    "WHERE id = ANY(%s)"
)
_RELEASE_SQL = (
    "UPDATE transmissions_message SET state = 'queued', claimed_by = '', claimed_at = NULL "
    "WHERE claimed_by = %s AND state = 'sending' AND id = ANY(%s)"
)
_HEARTBEAT_SQL = "UPDATE transmissions_message SET claimed_at = now() WHERE claimed_by = %s AND state = 'sending'"


@dataclass(slots=True)
class ChunkResult:
    sent: int = 0
    failed: int = 0
    deferred: list[int] | None = None  # Message pks to retry later, with their attempt count
    deferred_attempts: list[int] | None = None


def _loads(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str | bytes) else value


class _Session:
    """One chunk execution: DB cursor, claim token, heartbeat, and the group of messages
    handed off whose ``sent`` state (and then events) is not written yet."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.cursor = connection.cursor()
        self.cursor.execute("SET synchronous_commit TO off")
        self.stale = settings.ENGAGE_SEND_CLAIM_TIMEOUT
        self.beat_every = max(self.stale / 4, 0.5)
        self.last_beat = time.monotonic()
        self.unrecorded: list[int] = []  # pks the relay answered 2xx for, not yet ``sent``
        self.unrecorded_since = 0.0
        self.events: list[dict] = []  # events whose state is written once ``flush`` ran

    def delivered(self, pk: int, events: list[dict]) -> None:
        """Note a 2xx: recorded ``sent`` with its group (see the module docstring)."""
        if not self.unrecorded:
            self.unrecorded_since = time.monotonic()
        self.unrecorded.append(pk)
        self.events.extend(events)
        if len(self.unrecorded) >= SENT_GROUP:
            self.flush()

    def before_hand_off(self) -> None:
        """Record an old group before a transaction that may take as long as the relay likes."""
        if self.unrecorded and time.monotonic() - self.unrecorded_since >= SENT_GROUP_SECONDS:
            self.flush()

    def while_in_flight(self) -> None:
        """A body is on its way: record the group now if it makes SENT_GROUP with that body
        (the round trips then overlap the relay's work instead of adding to it)."""
        if len(self.unrecorded) >= SENT_GROUP - 1:
            self.flush()

    def flush(self) -> None:
        """Write ``sent`` for the group, then buffer the events of everything recorded."""
        if self.unrecorded:
            self.cursor.execute(_FINISH_SENT_SQL, [self.unrecorded])
            self.unrecorded = []
        if self.events:
            events, self.events = self.events, []
            events_enqueue(events)

    def heartbeat(self) -> None:
        if time.monotonic() - self.last_beat >= self.beat_every:
            self.cursor.execute(_HEARTBEAT_SQL, [self.token])
            self.last_beat = time.monotonic()

    def finish(self, pk: int, state: str, error: str = "") -> None:
        self.cursor.execute(_FINISH_ONE_SQL, [state, error, pk])

    def release(self, pks: list[int]) -> None:
        if pks:
            self.cursor.execute(_RELEASE_SQL, [self.token, pks])

    def close(self) -> None:
        """Ends the session; on an error path, first records what was handed off."""
        try:
            if self.unrecorded or self.events:
                try:
                    self.flush()
                except Exception:
                    log.exception("could not record %d handed-off message(s) as sent", len(self.unrecorded))
            self.cursor.execute("SET synchronous_commit TO DEFAULT")
        finally:
            self.cursor.close()


def _result_event(kind: str, fields: dict, built: Built, result: RelayResult | None, reason: str = "") -> dict:
    event = {
        "type": kind,
        **fields,
        "friendly_from": built.friendly_from,
        "subject": built.subject,
        "msg_from": built.mail_from,
        "msg_size": str(len(built.data)),
    }
    if result is not None:
        event["reason"] = result.reason
        event["raw_reason"] = result.reason
        event["error_code"] = str(result.code)
        if kind in ("bounce", "delay"):
            event["bounce_class"] = bounce_class(result.code, result.text)
    elif reason:
        event["reason"] = reason
        event["raw_reason"] = reason
    return event


@dataclass(slots=True)
class _Job:
    position: int  # in the claimed batch
    row: tuple
    fields: dict
    built: Built


def _job_build(session: _Session, prepared: Prepared, row: tuple, position: int = 0) -> _Job | None:
    """Generate one claimed message; None (recorded ``failed``, event buffered) on a render error."""
    pk, message_id, recipient = row[0], row[1], _loads(row[2])
    fields = event_fields(prepared, message_id=message_id, recipient=recipient)
    try:
        built = message_generate(
            prepared, message_id=message_id, recipient=recipient, raw_address=recipient.get("address_string")
        )
    except GenerationFailed as exc:
        session.finish(pk, "failed", f"generation: {exc.reason}")
        session.events.append(
            {"type": "generation_failure", **fields, "reason": exc.reason, "raw_reason": exc.reason,
             "error_code": "3001", "rcpt_subs": recipient.get("substitution_data") or {}},
        )  # fmt: skip
        return None
    return _Job(position, row, fields, built)


def _job_record(session: _Session, job: _Job, result: RelayResult) -> str:
    """Record the relay's answer for one message (``sent`` with its group) and leave its
    events to the session's next ``flush``: "sent", "failed" or "deferred"."""
    pk, attempts, fields, built = job.row[0], job.row[3], job.fields, job.built
    num_retries = str(max(attempts - 1, 0))
    if result.outcome == "delivered":
        events = [{"type": "injection", **fields, "friendly_from": built.friendly_from, "subject": built.subject,
                   "msg_from": built.mail_from, "msg_size": str(len(built.data))}] if attempts == 1 else []  # fmt: skip
        delivery = _result_event("delivery", fields, built, result)
        delivery["num_retries"] = num_retries
        events.append(delivery)
        session.delivered(pk, events)
        return "sent"
    if result.outcome == "deferred" and attempts < settings.ENGAGE_RETRY_MAX_ATTEMPTS:
        session.finish(pk, "deferred", result.reason)
        delay = _result_event("delay", fields, built, result)
        delay["num_retries"] = num_retries
        if attempts == 1:
            session.events.append(_result_event("injection", fields, built, None))
        session.events.append(delay)
        return "deferred"
    session.finish(pk, "failed", result.reason)
    bounce = _result_event("bounce", fields, built, result)
    bounce["num_retries"] = num_retries
    if attempts == 1:
        session.events.append(_result_event("injection", fields, built, None))
    session.events.append(bounce)
    return "failed"


def _deliver_one(session: _Session, prepared: Prepared, row: tuple) -> str:
    """Generate, hand off and record one claimed message (no overlap; see ``chunk_send``).

    Raises RelayUnavailable (state left ``sending`` for the caller to deal with).
    """
    job = _job_build(session, prepared, row)
    if job is None:
        return "failed"
    session.before_hand_off()
    built = job.built
    return _job_record(session, job, relay().send(mail_from=built.mail_from, rcpt_to=built.rcpt_to, data=built.data))


def _tally(result: ChunkResult, row: tuple, outcome: str) -> None:
    if outcome == "sent":
        result.sent += 1
    elif outcome == "failed":
        result.failed += 1
    else:
        result.deferred.append(row[0])
        result.deferred_attempts.append(row[3])


def chunk_send(*, transmission_id: int, chunk: int, token: str) -> ChunkResult:
    """Send every queued message of one chunk; returns what happened. Raises
    RelayUnavailable (after giving the unsent claimed messages back) so the task retries.

    The next message is generated while the relay takes in the previous body: its answer
    to the end of DATA is read (and recorded) right after, before the next transaction.
    """
    result = ChunkResult(deferred=[], deferred_attempts=[])
    prepared = prepared_get(transmission_id=transmission_id)
    if prepared is None:
        return result
    from transmissions.models import Transmission

    state = Transmission.objects.filter(pk=transmission_id).values_list("state", flat=True).first()
    if state != TransmissionState.GENERATING:
        return result
    session = _Session(token)
    try:
        while True:
            session.flush()
            session.cursor.execute(
                _CLAIM_SQL,
                {"token": token, "tx": transmission_id, "chunk": chunk, "stale": session.stale,
                 "limit": settings.ENGAGE_SEND_BATCH_SIZE},
            )  # fmt: skip
            rows = session.cursor.fetchall()
            if not rows:
                break
            session.last_beat = time.monotonic()
            pending: _Job | None = None  # body handed off, the relay's answer not read yet
            for position, row in enumerate(rows):
                session.heartbeat()
                job = _job_build(session, prepared, row, position)
                if pending is not None:
                    try:
                        _tally(result, pending.row, _job_record(session, pending, relay().send_end()))
                    except RelayUnavailable as exc:
                        _batch_lost(session, prepared, rows, pending, exc)
                        raise
                    pending = None
                if job is None:
                    result.failed += 1
                    continue
                session.before_hand_off()
                built = job.built
                try:
                    answer = relay().send_begin(mail_from=built.mail_from, rcpt_to=built.rcpt_to, data=built.data)
                except RelayUnavailable as exc:
                    _batch_lost(session, prepared, rows, job, exc)
                    raise
                if answer is None:
                    pending = job
                    session.while_in_flight()
                else:
                    _tally(result, row, _job_record(session, job, answer))
            if pending is not None:
                try:
                    _tally(result, pending.row, _job_record(session, pending, relay().send_end()))
                except RelayUnavailable as exc:
                    _batch_lost(session, prepared, rows, pending, exc)
                    raise
    finally:
        session.close()
    transmission_finish_if_done(transmission_id=transmission_id)
    return result


def _batch_lost(session: _Session, prepared: Prepared, rows: list, job: _Job, exc: RelayUnavailable) -> None:
    """The relay went away at ``job``: record what it accepted, give back it and the rest."""
    session.flush()
    _relay_lost(session, prepared, job.row, exc)
    session.release([r[0] for r in rows[job.position :]])


def _relay_lost(session: _Session, prepared: Prepared, row: tuple, exc: RelayUnavailable) -> None:
    recipient = _loads(row[2])
    fields = event_fields(prepared, message_id=row[1], recipient=recipient)
    log.warning("relay unavailable for message %s: %s", row[1], exc.reason)
    events_enqueue([{"type": "delay", **fields, "reason": exc.reason, "raw_reason": exc.reason,
                     "error_code": "", "bounce_class": "70", "num_retries": str(max(row[3] - 1, 0))}])  # fmt: skip


def message_retry(*, message_pk: int, token: str) -> tuple[str, int]:
    """Retry one deferred message: ``("sent" | "failed" | "deferred" | "skipped", attempts)``.

    Claims it with ``deferred → sending``, so a duplicate retry task does nothing.
    Raises RelayUnavailable (message given back to ``deferred``) when the relay is down.
    """
    session = _Session(token)
    try:
        session.cursor.execute(_CLAIM_ONE_SQL, {"token": token, "id": message_pk})
        row = session.cursor.fetchone()
        if row is None:
            return "skipped", 0
        prepared = prepared_get(transmission_id=row[4])
        if prepared is None:
            return "skipped", 0
        try:
            outcome = _deliver_one(session, prepared, row)
        except RelayUnavailable as exc:
            _relay_lost(session, prepared, row, exc)
            session.finish(row[0], "deferred", exc.reason)
            raise
        session.flush()
        return outcome, row[3]
    finally:
        session.close()


_RECOVER_SQL = """
UPDATE transmissions_message SET state = 'queued', claimed_by = '', claimed_at = NULL
 WHERE state = 'sending' AND claimed_at < now() - make_interval(secs => %s)
RETURNING transmission_id, chunk
"""
_STALLED_SQL = """
SELECT m.transmission_id, m.chunk
  FROM transmissions_message m JOIN transmissions_transmission t ON t.id = m.transmission_id
 WHERE t.state = 'Generating' AND m.state = 'queued'
   AND t.generation_start_time < now() - make_interval(secs => %s)
   AND NOT EXISTS (SELECT 1 FROM transmissions_message r
                    WHERE r.transmission_id = t.id
                      AND (r.claimed_at > now() - make_interval(secs => %s)
                           OR r.finished_at > now() - make_interval(secs => %s)))
 GROUP BY m.transmission_id, m.chunk
"""


def stale_claims_recover() -> tuple[set[tuple[int, int]], list[int]]:
    """Give back messages whose worker stopped heart-beating, and find chunks nobody works on.

    Returns ((transmission_id, chunk) pairs to enqueue again, Generating transmission ids to
    re-check for completion).
    """
    timeout = settings.ENGAGE_SEND_CLAIM_TIMEOUT
    with connection.cursor() as cursor:
        cursor.execute(_RECOVER_SQL, [timeout])
        pairs = {(tx, chunk) for tx, chunk in cursor.fetchall()}
        if pairs:
            log.warning("re-queued stale claimed messages in %d chunk(s): %s", len(pairs), sorted(pairs)[:10])
        cursor.execute(_STALLED_SQL, [timeout, timeout, timeout])
        pairs |= {(tx, chunk) for tx, chunk in cursor.fetchall()}
        cursor.execute("SELECT id FROM transmissions_transmission WHERE state = 'Generating'")
        generating = [row[0] for row in cursor.fetchall()]
    return pairs, generating


_ORPHANED_RETRIES_SQL = """
SELECT id FROM transmissions_message
 WHERE state = 'deferred' AND finished_at < now() - make_interval(secs => %s)
 ORDER BY id LIMIT %s
"""


def deferred_orphans_find(*, limit: int = 1000) -> list[int]:
    """Deferred messages whose retry is long overdue: their retry task was lost (a flushed or
    replaced broker). Every retry is due within ENGAGE_RETRY_MAX_SECONDS of the deferral;
    past that plus the claim timeout nobody is going to retry them. Enqueueing a second
    retry for one that does still have a task is harmless: ``message_retry`` claims with
    ``deferred -> sending``, so only one of the two does anything."""
    overdue = settings.ENGAGE_RETRY_MAX_SECONDS + settings.ENGAGE_SEND_CLAIM_TIMEOUT
    with connection.cursor() as cursor:
        cursor.execute(_ORPHANED_RETRIES_SQL, [overdue, limit])
        orphans = [row[0] for row in cursor.fetchall()]
    if orphans:
        log.warning("re-enqueueing %d deferred message(s) whose retry was lost", len(orphans))
    return orphans
