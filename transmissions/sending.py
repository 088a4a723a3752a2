"""Claim, generate and hand off messages, with a state per message (crash safety).

Delivery guarantee, and its one residual window
-----------------------------------------------
Messages are claimed in small batches with one conditional UPDATE
(``queued → sending``, ``claimed_by`` = this execution, ``claimed_at`` = now). Each message
is then generated and handed to the relay in one SMTP transaction: the envelope (MAIL,
RCPT and DATA in one write when the relay offers PIPELINING) goes out, the next message is
generated while the relay answers it, then the body goes and the relay's answer to it is
read at once and recorded: ``delivered`` on a 2xx, ``bounced`` after a 5xx, ``delayed``
after a 4xx (each state is named after the event it writes: ``transmissions.models.STATE_EVENT``).

Every message ends (STYLE rule 11). Whatever is raised while one message is rendered, built,
encoded or written to the relay fails that message alone: ``generation_failed`` with a
``generation_failure`` event whose reason names the exception (class and a bounded excerpt
of its message, never a traceback), and the batch goes on; a message whose envelope was
already pipelined is still completed. Only a lost relay connection (RelayUnavailable) or a
database error ends the batch. A message whose claim went stale ``ENGAGE_SEND_MAX_CLAIMS``
times (its worker died each time) fails with a ``generation_failure`` instead of being
claimed again; while a chunk holds such a message, messages are claimed one at a time so
that a worker dying on one message takes no other message's count with it. Each message
gets one ``injection`` event, with the first relay answer recorded for it, whichever attempt
that is. The ``delivered`` UPDATE is sent to PostgreSQL the moment the 2xx is
read, without waiting for its answer (a prepared statement, read back before the
connection's next use), so recording costs no round trip of its own.

If the worker dies (SIGKILL, OOM, power), the task is redelivered (``acks_late`` +
``reject_on_worker_lost``, or Redis' visibility timeout), and rows still ``sending``
whose claim went stale (``ENGAGE_SEND_CLAIM_TIMEOUT``, heart-beaten while a batch runs)
are claimed again, by the redelivered task or after the recovery beat task re-queues them.
``delivered`` rows are never touched again, so **nothing recorded as handed off is sent twice,
and nothing claimed is lost**.

SMTP has no way to make the relay's acceptance and our record one step (RFC 1047): the
relay takes responsibility when it has the end of DATA, and a client that never reads its
answer must send again or risk losing the message. So a worker process killed after the
body left it and before our ``delivered`` UPDATE did repeats **that one message** if the relay
committed it. The window is the relay's time to answer the end of DATA (a relay that
syncs its queue to disk: milliseconds), plus our reading the answer and writing the
UPDATE (microseconds: nothing else is done in between, the previous mark is read back
while the relay takes the body). A killed process's connection also stays open until the
kernel has torn the process down, so the relay cannot tell it is gone. The same holds for
a connection lost after the body was sent (``RelayUnavailable.handed_off_maybe``): the
message goes back to ``queued``. Never resending it instead would lose the messages the
relay had not committed, or answered 4xx: at-least-once is what every MTA does here.

State UPDATEs run with ``synchronous_commit = off``: that does not widen the window for a
worker crash (the commit is visible to every session at once), only for a PostgreSQL
crash, where the last ~``wal_writer_delay`` (200 ms) of ``delivered`` marks can be lost and
those messages resent.

Every event lands (issue 11): a message's events are written to the event outbox
(``tracking.outbox``) by the very statement that records its state (``WITH changed AS
(UPDATE ...) INSERT INTO tracking_event_outbox ...``), and only when that UPDATE matched
this claim. So a killed worker, a Redis restart or a lost claim can never leave a state
without its events or give a message two ``injection`` events; the lander moves them into
``tracking_event``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection
from psycopg import pq

from suppression.models import SUPPRESSED_BOUNCE_CLASS, SUPPRESSED_ERROR_CODE, SUPPRESSED_REASON, type_checked
from suppression.selectors import suppressed_among
from tracking.outbox import OUTBOX_INSERT, OUTBOX_INSERT_EACH, outbox_json
from transmissions.delivery import RelayResult, RelayUnavailable, bounce_class, relay
from transmissions.generation import (
    GeneratedMessage,
    GenerationFailed,
    PreparedTransmission,
    event_fields,
    message_generate,
    prepare,
    prepared_for,
    prepared_get,
    registered_consent,
    registered_consent_group,
    transmission_event_fields,
)
from transmissions.models import STATE_EVENT, MessageState, Transmission, TransmissionState
from transmissions.services import UNATTENDED_SQL, transmission_finish_if_done

log = logging.getLogger(__name__)

__all__ = [
    "ChunkResult",
    "chunk_send",
    "delayed_orphans_find",
    "group_send",
    "message_retry",
    "stale_claims_recover",
]

# A claimed row is a _ClaimedMessage (the RETURNING columns). A stale claim taken over
# counts as lost (``claims_lost``). While the chunk holds a message
# whose claim was lost (or a stale one), only its lowest claimable message is claimed: a
# worker that dies on one message again then takes only that one with it
# (ENGAGE_SEND_MAX_CLAIMS). That is a condition on the row, not the LIMIT. The rows are
# picked in a MATERIALIZED CTE, evaluated once: as an ``IN (SELECT ... LIMIT ... FOR UPDATE
# SKIP LOCKED)`` subquery the planner may rescan it per row, each rescan skipping the rows
# already locked, and take more than LIMIT rows. (An attacker's live run saw a chunk of 500
# with one ``claimed_at``, and an address suppressed mid-send still mailed; the plan behind
# it was not reproduced in tests/transmissions/test_claim_size.py, which forces others.)
_CLAIMABLE = """transmission_id = %(tx)s AND chunk = %(chunk)s
  AND (state = 'queued' OR (state = 'sending' AND claimed_at < now() - make_interval(secs => %(stale)s)))"""
_CLAIM_SQL = f"""
WITH picked AS MATERIALIZED (
  SELECT id FROM transmissions_message WHERE {_CLAIMABLE} ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
UPDATE transmissions_message m
   SET state = 'sending', claimed_by = %(token)s, claimed_at = now(), attempts = m.attempts + 1,
       claims_lost = m.claims_lost + (m.state = 'sending')::int
 WHERE m.id IN (SELECT id FROM picked)
   AND (m.state = 'queued' OR (m.state = 'sending' AND m.claimed_at < now() - make_interval(secs => %(stale)s)))
   AND (NOT (EXISTS (SELECT 1 FROM transmissions_message s
                      WHERE s.transmission_id = %(tx)s AND s.chunk = %(chunk)s
                        AND s.claims_lost > 0 AND s.state IN ('queued', 'sending'))
             OR EXISTS (SELECT 1 FROM transmissions_message s
                         WHERE s.transmission_id = %(tx)s AND s.chunk = %(chunk)s AND s.state = 'sending'
                           AND s.claimed_at < now() - make_interval(secs => %(stale)s)))
        OR m.id = (SELECT min(id) FROM transmissions_message WHERE {_CLAIMABLE}))
RETURNING m.id, m.message_id, m.recipient, m.attempts, m.finished_at IS NULL, m.claims_lost
"""
# A delayed message had an answer recorded (its ``injection`` went then): never fresh.
_CLAIM_ONE_SQL = """
UPDATE transmissions_message
   SET state = 'sending', claimed_by = %(token)s, claimed_at = now(), attempts = attempts + 1
 WHERE id = %(id)s AND state = 'delayed'
RETURNING id, message_id, recipient, attempts, false, claims_lost, transmission_id
"""
# The group path (group_send): the queued messages of several transmissions in one claim. A
# chunk that holds a message whose claim was lost, or a stale one, is left out whole: it is
# chunk_send's, whose claim takes such a chunk one message at a time (ENGAGE_SEND_MAX_CLAIMS).
_CLAIM_GROUP_SQL = """
WITH picked AS MATERIALIZED (SELECT q.id FROM transmissions_message q
                 WHERE q.transmission_id = ANY(%(txs)s) AND q.state = 'queued' AND q.claims_lost = 0
                   AND NOT EXISTS (SELECT 1 FROM transmissions_message s
                                    WHERE s.transmission_id = q.transmission_id AND s.chunk = q.chunk
                                      AND s.state IN ('queued', 'sending')
                                      AND (s.claims_lost > 0
                                           OR (s.state = 'sending'
                                               AND s.claimed_at < now() - make_interval(secs => %(stale)s))))
                 ORDER BY q.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
UPDATE transmissions_message m
   SET state = 'sending', claimed_by = %(token)s, claimed_at = now(), attempts = m.attempts + 1
 WHERE m.id IN (SELECT id FROM picked)
   AND m.state = 'queued'
RETURNING m.id, m.message_id, m.recipient, m.attempts, m.finished_at IS NULL, m.claims_lost, m.transmission_id
"""
# Several messages' outcomes and their events, in one statement, each only while this execution holds it.
_FINISH_MANY_SQL = f"""
WITH input AS (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS i(id, state, error, events)),
changed AS (
  UPDATE transmissions_message m
     SET state = i.state, finished_at = now(), last_error = i.error, claimed_by = ''
    FROM input i
   WHERE m.id = i.id AND m.claimed_by = %s AND m.state = 'sending' RETURNING m.id)
{OUTBOX_INSERT_EACH.format(payload="input.events", source="input")}"""
# A message's outcome and its events, in one statement, only while this execution holds it.
_FINISH_ONE_SQL = f"""
WITH changed AS (
  UPDATE transmissions_message SET state = %s, finished_at = now(), last_error = %s, claimed_by = ''
   WHERE id = %s AND claimed_by = %s AND state = 'sending' RETURNING id)
{OUTBOX_INSERT.format(param="%s")}"""
# Sent without waiting for the answer, right after the relay's 2xx (see the module docstring).
# Prepared once per connection, it keeps the generic plan made at its sixth run for the
# connection's life: that plan must find the row by the primary key whatever the statistics
# said then. Made while they said the message table was nearly empty (a new install until
# autovacuum's first analyze; every bench run after its vacuum), it was a sequential scan, and
# each message after scanned the whole growing table (0.27 ms of server CPU a message over
# 2,112, bench/smtp_group_cpu.py with pg_stat_statements), or a scan of all of msg_pending
# (every queued message) with sequential scans off. So the claim's connection runs with
# ``enable_seqscan`` off (_Claim), and the state is compared so that no other index serves
# it: a parameter ($4, always 'sending'), from which no partial index's predicate follows, by
# IS NOT DISTINCT FROM (equal, state being NOT NULL), which no index searches (``=`` let
# msg_tx_chunk_state be scanned whole). The primary key is the one path left
# (tests/transmissions/test_claim_connection.py; bench/RESULTS.md, "Session 20").
_MARK_DELIVERED = b"engage_mark_delivered_by_pk"
_MARK_DELIVERED_PREPARE = f"""
PREPARE engage_mark_delivered_by_pk (bigint, text, text, text) AS
WITH changed AS (
  UPDATE transmissions_message SET state = 'delivered', finished_at = now(), last_error = '', claimed_by = ''
   WHERE id = $1 AND claimed_by = $2 AND state IS NOT DISTINCT FROM $4 RETURNING id)
{OUTBOX_INSERT.format(param="$3")}"""
_SENDING = MessageState.SENDING.encode()
_RELEASE_SQL = f"""
WITH changed AS (
  UPDATE transmissions_message SET state = 'queued', claimed_by = '', claimed_at = NULL
   WHERE claimed_by = %s AND state = 'sending' AND id = ANY(%s) RETURNING id)
{OUTBOX_INSERT.format(param="%s")}"""
_HEARTBEAT_SQL = "UPDATE transmissions_message SET claimed_at = now() WHERE claimed_by = %s AND state = 'sending'"


@dataclass(slots=True)
class ChunkResult:
    """What one ``chunk_send`` recorded, by message state."""

    delivered: int = 0
    bounced: int = 0
    generation_failed: int = 0
    delayed: list[int] | None = None  # Message pks to retry later, with their attempt count
    delayed_attempts: list[int] | None = None


class _ClaimedMessage(NamedTuple):
    """A message as the claim statements return it (their RETURNING columns, in order)."""

    pk: int
    message_id: str
    recipient: Any  # the stored recipient (jsonb: a dict, or its JSON text)
    attempts: int  # this claim included
    fresh: bool  # no outcome recorded for it yet (no relay answer, so no ``injection`` event)
    claims_lost: int  # claims that went stale (the worker died) before it finished
    transmission_id: int = 0  # only from _CLAIM_ONE_SQL (a retry)


def _loads(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str | bytes) else value


class _Claim:
    """What one execution (a chunk, or one retried message) holds under its claim token:
    the DB cursor, the heartbeat that keeps the claim fresh, and the ``delivered`` UPDATE in
    flight. Every state it records carries that message's events (see the module docstring)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.token_bytes = token.encode()
        self.cursor = connection.cursor()
        self.cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [_MARK_DELIVERED.decode()])
        if self.cursor.fetchone() is None:
            self.cursor.execute(_MARK_DELIVERED_PREPARE)  # planned when run, under the settings below
        # Last, so that nothing above can fail with them set: close() sets them back.
        self.cursor.execute("SET synchronous_commit TO off")
        self.cursor.execute("SET enable_seqscan TO off")  # see _MARK_DELIVERED
        self.pgconn = connection.connection.pgconn
        self.marking: int | None = None  # pk whose ``delivered`` UPDATE has not been read back
        self.stale = settings.ENGAGE_SEND_CLAIM_TIMEOUT
        self.max_claims = settings.ENGAGE_SEND_MAX_CLAIMS
        self.beat_every = max(self.stale / 4, 0.5)
        self.last_beat = time.monotonic()

    def execute(self, sql: str, params: Any = None) -> None:
        self.drain()
        self.cursor.execute(sql, params)

    def mark_delivered(self, pk: int, events: list[dict]) -> None:
        """Record ``delivered`` with ``events`` now; the answer is read back before the
        connection's next use."""
        self.drain()
        payload = outbox_json(events).encode()
        self.pgconn.send_query_prepared(_MARK_DELIVERED, [str(pk).encode(), self.token_bytes, payload, _SENDING])
        self.marking = pk

    def drain(self) -> None:
        if self.marking is None:
            return
        pk, self.marking = self.marking, None
        problem = ""
        while (res := self.pgconn.get_result()) is not None:
            if res.status != pq.ExecStatus.COMMAND_OK:
                problem = (res.error_message or b"").decode("utf-8", "replace").strip()
            elif res.command_tuples == 0:
                log.warning("message %s was sent after its claim went stale (another worker may resend it)", pk)
        if problem:
            raise RuntimeError(f"could not record message {pk} as delivered: {problem}")

    def heartbeat(self) -> None:
        if time.monotonic() - self.last_beat >= self.beat_every:
            self.execute(_HEARTBEAT_SQL, [self.token])
            self.last_beat = time.monotonic()

    def finish(self, pk: int, state: str, error: str, events: list[dict]) -> None:
        """Record the claimed message ``pk`` ``state`` with its ``events`` (one statement);
        nothing when this execution no longer holds it."""
        self.execute(_FINISH_ONE_SQL, [state, error, pk, self.token, outbox_json(events)])
        if self.cursor.rowcount == 0:
            log.warning("message %s: its claim went stale before it was recorded %s", pk, state)

    def finish_many(self, ends: list[tuple[int, str, str, list[dict]]]) -> None:
        """:meth:`finish` for several claimed messages, ``(pk, state, error, events)`` each,
        in one statement."""
        if not ends:
            return
        pks, states, reasons, payloads = zip(*((pk, state, error, outbox_json(events))
                                               for pk, state, error, events in ends), strict=True)  # fmt: skip
        self.execute(_FINISH_MANY_SQL, [list(pks), list(states), list(reasons), list(payloads), self.token])
        if self.cursor.rowcount < len(ends):
            log.warning(
                "%d message(s): their claim went stale before they were recorded", len(ends) - self.cursor.rowcount
            )

    def release(self, pks: list[int], events: list[dict]) -> None:
        """Give claimed messages back to ``queued``, writing ``events`` if any was."""
        if pks:
            self.execute(_RELEASE_SQL, [self.token, pks, outbox_json(events)])

    def close(self) -> None:
        """Close the cursor; on an error path, first read the last ``delivered`` record back."""
        try:
            if self.marking is not None:
                try:
                    self.drain()
                except Exception:
                    log.exception("could not record the last delivered message")
            self.cursor.execute("SET synchronous_commit TO DEFAULT")
            self.cursor.execute("SET enable_seqscan TO DEFAULT")
        finally:
            self.cursor.close()


#: The most characters of a message's ``subject`` and ``friendly_from`` its events carry (a
#: longer one is cut, with "…"): each event of each copy carries them, and a folded 900 KB
#: Subject on a message with 100 bcc copies made an events API page of 182 MB (an attacker's
#: finding). The message itself goes as written.
EVENT_TEXT_MAX = 1024


def _event_text(value: str) -> str:
    return value if len(value) <= EVENT_TEXT_MAX else value[: EVENT_TEXT_MAX - 1] + "…"


def _result_event(
    kind: str, fields: dict, built: GeneratedMessage, result: RelayResult | None, reason: str = ""
) -> dict:
    event = {
        "type": kind,
        **fields,
        "friendly_from": _event_text(built.friendly_from),
        "subject": _event_text(built.subject),
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


def _received(injection: dict, received_at: datetime | None) -> dict:
    """A message's ``injection`` event at ``received_at`` when given (an SMTP injection's:
    ``transmissions.generation.PreparedTransmission.received_at``, when the listener stored
    it, in the database's clock), and never later than now in this process's clock, which
    stamps its ``delivery``: a worker whose clock is behind the database's would otherwise
    show the message delivered before it was injected (an attacker's finding). Otherwise it
    takes the time it is recorded (``tracking.events.events_stamp``)."""
    if received_at is not None:
        injection["timestamp"] = min(received_at, datetime.now(UTC)).isoformat()
    return injection


@dataclass(slots=True)
class _Job:
    position: int  # in the claimed batch
    message: _ClaimedMessage
    fields: dict
    built: GeneratedMessage
    received_at: datetime | None = None  # PreparedTransmission.received_at: an SMTP injection's time


#: Characters of an exception's message kept in a ``generation_failure`` reason.
REASON_EXCERPT = 300


def failure_reason(exc: BaseException) -> str:
    """``ExceptionClass: message`` on one line, the message cut to :data:`REASON_EXCERPT`
    characters: what an event may say about an unexpected fault (no traceback)."""
    text = " ".join(str(exc).split())
    if len(text) > REASON_EXCERPT:
        text = text[:REASON_EXCERPT] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _generation_failed(claim: _Claim, message: _ClaimedMessage, fields: dict, reason: str, code: str) -> None:
    """Record one message ``generation_failed`` (counted in ``num_failed_gen``) with its event."""
    event = {"type": "generation_failure", **fields, "reason": reason, "raw_reason": reason, "error_code": code,
             "rcpt_subs": _loads(message.recipient).get("substitution_data") or {}}  # fmt: skip
    claim.finish(message.pk, MessageState.GENERATION_FAILED, reason, [event])


def _job_build(
    claim: _Claim,
    prepared: PreparedTransmission,
    message: _ClaimedMessage,
    position: int = 0,
    consents: dict[str, str] | None = None,
) -> _Job | None:
    """Generate one claimed message; None (recorded ``generation_failed``, event buffered) when it
    cannot be: a render error, any other exception while it is rendered, built or encoded
    (STYLE rule 11: it fails alone), or a message whose claims died ENGAGE_SEND_MAX_CLAIMS
    times. ``consents``: the batch's register states (``registered_consent``); None reads
    this message's alone."""
    message_id, recipient = message.message_id, _loads(message.recipient)
    fields = event_fields(prepared, message_id=message_id, recipient=recipient)
    if message.claims_lost >= claim.max_claims:
        reason = f"claimed {message.claims_lost} times without finishing: the worker died each time"
        log.error("message %s: %s", message_id, reason)
        _generation_failed(claim, message, fields, reason, "1901")
        return None
    try:
        if consents is None:
            consents = registered_consent(prepared, [recipient])
        built = message_generate(prepared, message_id=message_id, recipient=recipient, consents=consents)
    except GenerationFailed as exc:
        _generation_failed(claim, message, fields, exc.reason, "3001")
        return None
    except DatabaseError:
        raise  # not this message's fault: the claim is given back when the task fails
    except Exception as exc:
        reason = f"message could not be generated: {failure_reason(exc)}"
        log.warning("message %s: %s", message_id, reason, exc_info=True)
        _generation_failed(claim, message, fields, reason, "1901")
        return None
    return _Job(position, message, fields, built, prepared.received_at)


def _relay_fault(claim: _Claim, job: _Job, exc: Exception) -> str:
    """Something other than the relay's answer or a lost connection went wrong while this
    message was written to the relay, before its end of DATA: the relay cannot have taken
    it. The connection is dropped (the relay discards the half-written transaction) and
    the message alone fails."""
    relay().abandon()
    reason = f"message could not be handed to the relay: {failure_reason(exc)}"
    log.warning("message %s: %s", job.message.message_id, reason, exc_info=True)
    _generation_failed(claim, job.message, job.fields, reason, "1901")
    return MessageState.GENERATION_FAILED


def _job_record(claim: _Claim, job: _Job, result: RelayResult) -> str:
    """Record the relay's answer for one message with its events, in one statement: the
    state it ends in, ``delivered``, ``bounced`` or ``delayed`` (a 4xx on the last of
    ENGAGE_RETRY_MAX_ATTEMPTS bounces)."""
    pk, attempts = job.message.pk, job.message.attempts
    outcome = result.outcome
    if outcome == MessageState.DELAYED and attempts >= settings.ENGAGE_RETRY_MAX_ATTEMPTS:
        outcome = MessageState.BOUNCED
    event = _result_event(STATE_EVENT[outcome], job.fields, job.built, result)
    event["num_retries"] = str(max(attempts - 1, 0))
    # One per message: with the first outcome recorded for it, whatever attempt that was (a
    # message re-claimed after its worker died, or given back when the relay went away).
    events = (
        [_received(_result_event("injection", job.fields, job.built, None), job.received_at), event]
        if job.message.fresh else [event]
    )  # fmt: skip
    if outcome == MessageState.DELIVERED:
        claim.mark_delivered(pk, events)
    else:
        claim.finish(pk, outcome, result.reason, events)
    return outcome


#: What a message gets when reading the relay's answer to its end of DATA failed otherwise
#: than by a lost connection: the relay may own it or not, so it is retried as after a 4xx
#: (at least once, bounded by ENGAGE_RETRY_MAX_ATTEMPTS).
_NO_ANSWER = (451, "4.4.0 [internal] no answer read after the end of DATA")


def _hand_off(claim: _Claim, job: _Job) -> str:
    """The rest of the transaction whose envelope ``relay().envelope_send`` started: read the
    envelope's answers, send the body, read the relay's answer at once and record it.

    Raises RelayUnavailable (state left ``sending`` for the caller to deal with).
    """
    transaction = relay()
    try:
        answer = transaction.envelope_result()
        if answer is None:
            transaction.body_send(job.built.data)
    except RelayUnavailable:
        raise
    except Exception as exc:
        return _relay_fault(claim, job, exc)
    if answer is None:
        # While the relay takes the body: read back the last ``delivered`` mark, so that nothing
        # but this message's own mark is done between the relay's answer and its record.
        claim.drain()
        try:
            answer = transaction.body_result()
        except RelayUnavailable:
            raise
        except Exception as exc:
            transaction.abandon()
            log.warning("message %s: no answer to its end of DATA: %s", job.message.message_id, failure_reason(exc))
            answer = RelayResult(MessageState.DELAYED, _NO_ANSWER[0], f"{_NO_ANSWER[1]}: {failure_reason(exc)}")
    return _job_record(claim, job, answer)


def _envelope_send(claim: _Claim, job: _Job) -> bool:
    """Start the message's transaction; False when that failed (the message is recorded)."""
    try:
        relay().envelope_send(mail_from=job.built.mail_from, rcpt_to=job.built.rcpt_to, smtputf8=job.built.smtputf8)
    except RelayUnavailable:
        raise
    except Exception as exc:
        _relay_fault(claim, job, exc)
        return False
    return True


#: A claimed message and the prepared transmission it belongs to.
_Item = tuple[PreparedTransmission, _ClaimedMessage]


def _next_job(
    claim: _Claim, items: list[_Item], start: int, result: ChunkResult, consents: dict[str, str]
) -> _Job | None:
    """Generate the next message of the batch from ``start`` (render errors recorded)."""
    for position in range(start, len(items)):
        claim.heartbeat()
        prepared, message = items[position]
        job = _job_build(claim, prepared, message, position, consents)
        if job is not None:
            return job
        result.generation_failed += 1
    return None


def _address_or_none(recipient: Any) -> str | None:
    """The recipient's address, or None when the stored recipient has none (its own
    generation then fails alone, with its event: one bad row never fails the batch)."""
    try:
        email = recipient["address"]["email"]
    except (KeyError, TypeError):
        return None
    return email if isinstance(email, str) else None


def _suppressed_end(claim: _Claim, items: list[_Item], result: ChunkResult) -> list[_Item]:
    """End the claimed messages whose address is suppressed for their type (SPEC A.5, B
    §11.8) and return the others, in order. One query per suppression type and
    ``skip_suppression`` among the batch's transmissions (``suppression.selectors.suppressed_among``:
    one for a chunk, one for a group of like SMTP messages), and one statement that records
    every suppressed message ``bounced``, never generated nor relayed, with its
    ``injection`` (when it had none yet) and a class-25 ``bounce`` (error code 554, the A.5
    reason), so metrics, events, webhooks and the report count it. With a transmission's
    ``options.skip_suppression`` only ``Compliance`` entries count (they always apply). Used
    on the first attempt and on every retry: an address suppressed while its message was
    delayed is not mailed."""
    recipients = [_loads(message.recipient) for _prepared, message in items]
    emails = [_address_or_none(recipient) for recipient in recipients]
    asked: dict[tuple[str, bool], list[str]] = {}
    for (prepared, _message), email in zip(items, emails, strict=True):
        if email is not None:
            kind = (type_checked(transactional=prepared.options.transactional), prepared.skip_suppression)
            asked.setdefault(kind, []).append(email)
    suppressed = {
        kind: suppressed_among(addresses=addresses, type=kind[0], compliance_only=kind[1])
        for kind, addresses in asked.items()
    }
    if not any(suppressed.values()):
        return items
    kept: list[_Item] = []
    ends: list[tuple[int, str, str, list[dict]]] = []
    for (prepared, message), recipient, email in zip(items, recipients, emails, strict=True):
        kind = (type_checked(transactional=prepared.options.transactional), prepared.skip_suppression)
        if email is None or email not in suppressed[kind]:
            kept.append((prepared, message))
            continue
        fields = event_fields(prepared, message_id=message.message_id, recipient=recipient)
        bounce = {"type": "bounce", **fields, "reason": SUPPRESSED_REASON, "raw_reason": SUPPRESSED_REASON,
                  "error_code": SUPPRESSED_ERROR_CODE, "bounce_class": SUPPRESSED_BOUNCE_CLASS,
                  "num_retries": str(max(message.attempts - 1, 0))}  # fmt: skip
        events = (
            [_received({"type": "injection", **fields}, prepared.received_at), bounce] if message.fresh else [bounce]
        )
        ends.append((message.pk, MessageState.BOUNCED, SUPPRESSED_REASON, events))
        result.bounced += 1
    claim.finish_many(ends)
    return kept


def _tally(result: ChunkResult, message: _ClaimedMessage, outcome: str) -> None:
    if outcome == MessageState.DELIVERED:
        result.delivered += 1
    elif outcome == MessageState.BOUNCED:
        result.bounced += 1
    elif outcome == MessageState.GENERATION_FAILED:
        result.generation_failed += 1
    else:
        assert result.delayed is not None and result.delayed_attempts is not None  # chunk_send sets both
        result.delayed.append(message.pk)
        result.delayed_attempts.append(message.attempts)


def _batch_consents(items: list[_Item]) -> dict[str, str]:
    """The tracking consent register's states for a claimed batch, whichever transmissions
    its messages belong to: one query (SPEC A.5; ``registered_consent_group``). A recipient
    that cannot be read is left out (its own generation records why)."""
    pairs = [(prepared, _loads(message.recipient)) for prepared, message in items]
    return registered_consent_group([pair for pair in pairs if _address_or_none(pair[1]) is not None])


def chunk_send(*, transmission_id: int, chunk: int, token: str) -> ChunkResult:
    """Send every queued message of one chunk; returns what happened. A claimed batch's
    addresses are checked against the suppression list in one query (only its ``Compliance``
    entries with the transmission's ``options.skip_suppression``): a suppressed message
    bounces (class 25) without being generated (:func:`_suppressed_end`). Raises RelayUnavailable (after giving
    the unsent claimed messages back) so the task retries."""
    result = ChunkResult(delayed=[], delayed_attempts=[])
    transmission = Transmission.objects.filter(pk=transmission_id).first()  # one query: state and content
    if transmission is None or transmission.state != TransmissionState.GENERATING:
        return result
    try:
        prepared: PreparedTransmission | None = prepared_for(transmission)
        unpreparable = ""
    except DatabaseError:
        raise
    except Exception as exc:  # a template deleted or broken since: no message can be generated
        prepared, unpreparable = None, f"the content cannot be prepared: {failure_reason(exc)}"
        log.error("transmission %s: %s", transmission_id, unpreparable)
    claim = _Claim(token)
    try:
        for rows in _claimed_batches(claim, _CLAIM_SQL, {"token": token, "tx": transmission_id, "chunk": chunk}):
            if prepared is None:
                for message in rows:
                    _unpreparable_fail(claim, transmission, unpreparable, message=message, result=result)
                continue
            _batch_send(claim, [(prepared, message) for message in rows], result)
    finally:
        claim.close()
    transmission_finish_if_done(transmission_id=transmission_id)
    return result


def _claimed_batches(
    claim: _Claim, sql: str, params: dict[str, Any], *, whole_batches: bool = False
) -> Iterator[list[_ClaimedMessage]]:
    """Claim with ``sql`` (``params`` plus the claim's ``stale`` and ``ENGAGE_SEND_BATCH_SIZE``
    as ``limit``) until it claims nothing: each batch in id order (RETURNING gives storage
    order), the claim's heartbeat renewed as it comes.

    ``whole_batches``: ``sql`` claims every message it picks (:data:`_CLAIM_GROUP_SQL`), so a
    batch of fewer than ``limit`` took every message it could (``SKIP LOCKED`` passes over
    those another execution holds, which that execution sends or gives back to its own
    retry) and the claiming stops there, without a statement that finds nothing: a
    listener's group of 64 was claimed in three statements (50, 14, then 0), each planned
    anew (bench/RESULTS.md, "Session 19"). Not for :data:`_CLAIM_SQL`, which claims one
    message at a time while its chunk holds a lost claim."""
    limit = settings.ENGAGE_SEND_BATCH_SIZE
    while True:
        claim.execute(sql, {**params, "stale": claim.stale, "limit": limit})
        rows = sorted(_ClaimedMessage(*row) for row in claim.cursor.fetchall())
        if not rows:
            return
        claim.last_beat = time.monotonic()
        yield rows
        if whole_batches and len(rows) < limit:
            return


def _unpreparable_fail(
    claim: _Claim, transmission: Transmission, reason: str, message: _ClaimedMessage, result: ChunkResult
) -> None:
    """End a claimed message of a transmission whose content cannot be prepared: its
    ``generation_failure`` (code 1901) with ``reason``."""
    fields = transmission_event_fields(transmission, message_id=message.message_id, recipient=_loads(message.recipient))
    _generation_failed(claim, message, fields, reason, "1901")
    result.generation_failed += 1


def _batch_send(claim: _Claim, items: list[_Item], result: ChunkResult) -> None:
    """Send one claimed batch (of one transmission, or of a group's): suppressed messages
    end first (:func:`_suppressed_end`), the consent register is read once, then each
    message is generated and handed off, the next one generated while the relay answers
    the envelope of this one. Raises RelayUnavailable after giving the unsent messages back
    (:func:`_batch_lost`)."""
    items = _suppressed_end(claim, items, result)
    consents = _batch_consents(items)
    job = _next_job(claim, items, 0, result, consents)
    while job is not None:
        try:
            if not _envelope_send(claim, job):
                result.generation_failed += 1
                job = _next_job(claim, items, job.position + 1, result, consents)
                continue
            # The next message is generated while the relay answers the envelope
            # (never while it answers the body: that answer is read at once). Its
            # own faults are recorded on it: this one is still completed.
            following = _next_job(claim, items, job.position + 1, result, consents)
            _tally(result, job.message, _hand_off(claim, job))
        except RelayUnavailable as exc:
            assert job is not None  # reassigned only just before continue
            _batch_lost(claim, items, job, exc)
            raise
        job = following


def _batch_lost(claim: _Claim, items: list[_Item], job: _Job, exc: RelayUnavailable) -> None:
    """The relay went away at ``job``: give it and the rest back, with its ``delay`` event."""
    prepared = items[job.position][0]
    claim.release(
        [message.pk for _prepared, message in items[job.position :]], [_relay_lost(prepared, job.message, exc)]
    )


def group_send(*, transmissions: Sequence[Transmission], token: str) -> ChunkResult:
    """Send the queued messages of several Generating transmissions as one batch (the SMTP
    listener's group: ``transmissions.services.transmissions_start_group`` gives them):
    each transmission prepared once (its own content, campaign, metadata, tags and options:
    every message keeps its ``X-MSYS-API``), then their messages claimed together, up to
    ``ENGAGE_SEND_BATCH_SIZE`` per statement (:data:`_CLAIM_GROUP_SQL`), the suppression
    list and the consent register read once per claimed batch, and the messages handed off
    over this process's one relay connection, envelopes pipelined as :func:`chunk_send`
    does (:func:`_batch_send`). Every guarantee of :func:`chunk_send` holds per message: a
    fault fails that message alone with its event, its outcome and events are one statement
    under its claim, one ``injection`` per message.

    What it leaves to :func:`chunk_send` (the caller runs it for the transmissions it did not
    finish, ``transmissions.tasks``): a chunk holding a message whose claim was lost or went
    stale (claimed one message at a time there, ENGAGE_SEND_MAX_CLAIMS), and messages claimed
    by another execution. A transmission whose content cannot be prepared fails each of its
    messages with a ``generation_failure``, as in :func:`chunk_send`.

    Raises RelayUnavailable (after giving the unsent claimed messages back, see
    :func:`_batch_lost`) and ``DatabaseError``; does not finish the transmissions
    (``transmissions.services.transmissions_finish_group``)."""
    result = ChunkResult(delayed=[], delayed_attempts=[])
    prepared: dict[int, PreparedTransmission] = {}
    unpreparable: dict[int, tuple[Transmission, str]] = {}
    for transmission in transmissions:
        try:
            # Not prepared_for: a one-message transmission would only push REST ones out of its cache.
            prepared[transmission.id] = prepare(transmission)
        except DatabaseError:
            raise
        except Exception as exc:
            reason = f"the content cannot be prepared: {failure_reason(exc)}"
            unpreparable[transmission.id] = (transmission, reason)
            log.error("transmission %s: %s", transmission.id, reason)
    if not transmissions:
        return result
    claim = _Claim(token)
    try:
        txs = [transmission.id for transmission in transmissions]
        for rows in _claimed_batches(claim, _CLAIM_GROUP_SQL, {"token": token, "txs": txs}, whole_batches=True):
            items: list[_Item] = []
            for message in rows:
                if message.transmission_id in prepared:
                    items.append((prepared[message.transmission_id], message))
                else:
                    _unpreparable_fail(claim, *unpreparable[message.transmission_id], message=message, result=result)
            _batch_send(claim, items, result)
    finally:
        claim.close()
    return result


def _relay_lost(prepared: PreparedTransmission, message: _ClaimedMessage, exc: RelayUnavailable) -> dict:
    """The ``delay`` event of a message whose hand-off the lost relay interrupted."""
    fields = event_fields(prepared, message_id=message.message_id, recipient=_loads(message.recipient))
    log.warning("relay unavailable for message %s: %s", message.message_id, exc.reason)
    return {"type": "delay", **fields, "reason": exc.reason, "raw_reason": exc.reason, "error_code": "",
            "bounce_class": "70", "num_retries": str(max(message.attempts - 1, 0))}  # fmt: skip


def message_retry(*, message_pk: int, token: str) -> tuple[str, int]:
    """Retry one delayed message: ``(state, attempts)``, the state it was recorded in
    (``delivered``, ``bounced``, ``delayed`` or ``generation_failed``), or ``"skipped"``.

    Claims it with ``delayed → sending``, so a duplicate retry task does nothing. Its address
    is checked against the suppression list again (:func:`_suppressed_end`): suppressed
    while it was delayed, it bounces (class 25) unsent.
    Raises RelayUnavailable (message given back to ``delayed``) when the relay is down.
    """
    claim = _Claim(token)
    try:
        claim.execute(_CLAIM_ONE_SQL, {"token": token, "id": message_pk})
        row = claim.cursor.fetchone()
        if row is None:
            return "skipped", 0
        message = _ClaimedMessage(*row)
        prepared = prepared_get(transmission_id=message.transmission_id)
        if prepared is None:
            return "skipped", 0
        if not _suppressed_end(claim, [(prepared, message)], ChunkResult()):
            return MessageState.BOUNCED, message.attempts
        job = _job_build(claim, prepared, message)
        if job is None:
            return MessageState.GENERATION_FAILED, message.attempts
        try:
            outcome = _hand_off(claim, job) if _envelope_send(claim, job) else MessageState.GENERATION_FAILED
        except RelayUnavailable as exc:
            claim.finish(message.pk, MessageState.DELAYED, exc.reason, [_relay_lost(prepared, message, exc)])
            raise
        claim.drain()
        return outcome, message.attempts
    finally:
        claim.close()


_RECOVER_SQL = """
UPDATE transmissions_message
   SET state = 'queued', claimed_by = '', claimed_at = NULL, claims_lost = claims_lost + 1
 WHERE state = 'sending' AND claimed_at < now() - make_interval(secs => %s)
RETURNING transmission_id, chunk
"""
# Queued messages of a transmission no worker is on (UNATTENDED_SQL: an SMTP injection never
# claimed is not one, or every recovery tick queued a chunk task per waiting injection).
_STALLED_SQL = f"""
SELECT m.transmission_id, m.chunk
  FROM transmissions_message m JOIN transmissions_transmission t ON t.id = m.transmission_id
 WHERE m.state = 'queued' AND {UNATTENDED_SQL}
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
        cursor.execute(_STALLED_SQL, {"stale": timeout})
        pairs |= {(tx, chunk) for tx, chunk in cursor.fetchall()}
        cursor.execute("SELECT id FROM transmissions_transmission WHERE state = 'Generating'")
        generating = [pk for (pk,) in cursor.fetchall()]
    return pairs, generating


_ORPHANED_RETRIES_SQL = """
SELECT id FROM transmissions_message
 WHERE state = 'delayed' AND finished_at < now() - make_interval(secs => %s)
 ORDER BY id LIMIT %s
"""


def delayed_orphans_find(*, limit: int = 1000) -> list[int]:
    """Delayed messages whose retry is long overdue: their retry task was lost (a flushed or
    replaced broker). Every retry is due within ENGAGE_RETRY_MAX_SECONDS of the delay;
    past that plus the claim timeout nobody is going to retry them. Enqueueing a second
    retry for one that does still have a task is harmless: ``message_retry`` claims with
    ``delayed -> sending``, so only one of the two does anything."""
    overdue = settings.ENGAGE_RETRY_MAX_SECONDS + settings.ENGAGE_SEND_CLAIM_TIMEOUT
    with connection.cursor() as cursor:
        cursor.execute(_ORPHANED_RETRIES_SQL, [overdue, limit])
        orphans = [pk for (pk,) in cursor.fetchall()]
    if orphans:
        log.warning("re-enqueueing %d delayed message(s) whose retry was lost", len(orphans))
    return orphans
