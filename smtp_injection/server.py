"""The SMTP injection listener on aiosmtpd 1.4.6 (SMTP-INJECTION.md §5.1-§5.5, §5.9, §5.10).

One asyncio loop per process (``manage.py smtp_listen``; never the web process, aiosmtpd
#293). A message is read and prepared on the loop (no I/O). The accepted messages are
stored from the loop on its own asyncio database connection, in groups (:class:`GroupStore`:
the messages of concurrent sessions in one statement and one commit), so a slow commit
holds up the sessions waiting for it, not the loop; the key lookups and the policy's view
(Django's ORM, which is blocking) run in a bounded thread pool.

What the dialogue promises:

- ESMTP with PIPELINING, ENHANCEDSTATUSCODES (RFC 2034: every 2xx/4xx/5xx reply carries
  an enhanced code; aiosmtpd's own texts without one are given one in :meth:`InjectionSMTP.push`),
  SIZE, 8BITMIME and SMTPUTF8; STARTTLS (aiosmtpd >= 1.4.6 drops commands pipelined
  behind it, aio-libs/aiosmtpd#380); lines up to ``ENGAGE_SMTP_MAX_LINE_LENGTH`` (Django
  writes a 2 KB ``X-MSYS-API`` on one line); the end of DATA only at CRLF.CRLF (1.4.5's
  smuggling fix, aio-libs/aiosmtpd#415).
- AUTH PLAIN and LOGIN, offered after STARTTLS only (before it only when
  ``ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH`` and a loopback address). ``535 5.7.8`` for a wrong
  user, key or grant; ``421 4.7.0`` and close after ``ENGAGE_SMTP_AUTH_ATTEMPTS`` failures;
  MAIL, RCPT and DATA before AUTH ``530 5.7.0``. The key is checked again at each MAIL FROM
  (at most ``key_check_seconds`` old): revoked or without ``smtp/inject``, ``530 5.7.0`` and
  the session must AUTH again.
- ``421 4.7.0`` and close over ``ENGAGE_SMTP_MAX_CONNECTIONS`` sessions in the process,
  ``ENGAGE_SMTP_MAX_CONNECTIONS_PER_IP`` from one client address (counted from the
  connection, authenticated or not: idle unauthenticated connections from one address
  cannot take the whole process's cap) or ``ENGAGE_SMTP_MAX_CONNECTIONS_PER_KEY`` for one key; ``452 4.5.3`` past
  ``ENGAGE_SMTP_MAX_RCPTS`` recipients; ``552 5.3.4`` over ``ENGAGE_SMTP_MAX_MESSAGE_SIZE``.
- The reply to the final dot: ``250 2.0.0 OK <transmission id>`` once the transmission is
  committed (``smtp_injection.services.smtp_messages_store_async``, by :class:`GroupStore`), the header's or Engage's
  ``5xx`` refusal, or ``451 4.3.0`` when it could not be stored (never 250).
- Shutdown (:meth:`Listener.shutdown`): stop accepting, ``421 4.3.2`` to sessions not in
  DATA, let DATA in flight finish (up to ``ENGAGE_SMTP_SHUTDOWN_GRACE`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import os
import queue
import re
import select
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, Session
from django.db import close_old_connections, connections
from psycopg import AsyncConnection

from mailcore.addresses import address_problem
from mailcore.msys_api import MsysApi, MsysApiError
from mailcore.smtp_policy import (
    POLICY_FAILED,
    PolicyAccept,
    PolicyDecisionError,
    PolicyReject,
    PolicyView,
    policy_decision_check,
)
from mailcore.smtp_reply import SmtpReply, reply_text
from smtp_injection.services import (
    Injection,
    SmtpPrincipal,
    SmtpRefusal,
    smtp_message_prepare,
    smtp_message_read,
    smtp_messages_store_async,
    smtp_policy_view,
    smtp_principal_authenticate,
    smtp_principal_check,
    smtp_store_connect,
)
from transmissions.services import PreparedTransmission, StoreConnection, transmissions_generation_enqueue

log = logging.getLogger(__name__)


def _unrecognised_redacted(record: logging.LogRecord) -> bool:
    """aiosmtpd's ``"%r unrecognised: %s"`` warning with its line shown only when it is a
    command word (letters, at most 12): a client that sends AUTH LOGIN's base64 user and
    password after a refusal has them logged as unrecognised commands, upper-cased, from
    which a hex API key decodes back (an attacker's finding). Filter of the ``mail.log``
    logger; keeps every record."""
    if record.msg == "%r unrecognised: %s" and isinstance(record.args, tuple) and len(record.args) == 2:
        peer, command = record.args
        if not (isinstance(command, str) and command.isalpha() and len(command) <= 12):
            record.args = (peer, f"<a line of {len(str(command))} characters, not shown: it may be a credential>")
    return True


logging.getLogger("mail.log").addFilter(_unrecognised_redacted)

TEMPORARY_FAILURE = SmtpReply(451, "4.3.0", "Temporary failure, please retry").line()
SHUTTING_DOWN = SmtpReply(421, "4.3.2", "Service shutting down").line()
TOO_MANY_CONNECTIONS = SmtpReply(421, "4.7.0", "Too many connections, try again later").line()
TOO_MANY_IP_CONNECTIONS = SmtpReply(421, "4.7.0", "Too many connections from your address, try again later").line()
TOO_MANY_KEY_CONNECTIONS = SmtpReply(421, "4.7.0", "Too many connections for this key, try again later").line()
TOO_MANY_AUTH_FAILURES = SmtpReply(421, "4.7.0", "Too many authentication failures").line()
AUTH_UNAVAILABLE = SmtpReply(454, "4.7.0", "Temporary authentication failure").line()
TOO_MANY_RECIPIENTS = SmtpReply(452, "4.5.3", "Too many recipients").line()
BAD_SENDER = SmtpReply(553, "5.1.7", "Bad sender address syntax").line()
BAD_RECIPIENT = SmtpReply(501, "5.1.3", "Bad recipient address syntax").line()
KEY_REVOKED = SmtpReply(530, "5.7.0", "Authentication required: the key is revoked or lacks smtp/inject").line()
TOO_BIG = SmtpReply(552, "5.3.4", "Message size exceeds fixed maximum message size").line()
TLS_ACTIVE = SmtpReply(503, "5.5.1", "TLS already active").line()
LINE_TOO_LONG = SmtpReply(500, "5.5.2", "Line too long").line()

# aiosmtpd's own replies, with an enhanced status code (RFC 3463) and SparkPost-like texts
# (SMTP-INJECTION.md §5.2, §5.9). Other 4xx/5xx replies without one get "<class>.5.0".
_OWN_REPLIES = {
    "250 OK": "250 2.0.0 OK",
    "221 Bye": "221 2.0.0 Bye",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
    "552 Error: Too much mail data": TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": LINE_TOO_LONG,
    "554 Command refused due to lack of security": "554 5.7.0 Command refused due to lack of security",
    "252 Cannot VRFY user, but will accept message and attempt delivery": (
        "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
    ),
}
_NO_ENHANCED = re.compile(r"^([45])\d\d (?!\d\.\d{1,3}\.\d{1,3}\b)")
# aiosmtpd's HELP replies (the greeting and HELO/EHLO replies go without one, RFC 2034 §3).
_HELP = re.compile(r"^250 (?=Supported commands: |Syntax: )")


def _simple_path() -> re.Pattern[str]:
    """MAIL FROM's / RCPT TO's everyday path (RFC 5321 §4.1.2 Dot-string "@" Domain, ASCII
    only), then, after one space, parameters without a comment or quote to begin them
    (:meth:`InjectionSMTP._getaddr`)."""
    atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    return re.compile(rf"<({atom}(?:\.{atom})*@{label}(?:\.{label})*)>(?: ([!#-'*-~][!-~]*(?: [!-~]+)*))?\Z")


_SIMPLE_PATH = _simple_path()
#: The longest MAIL FROM / RCPT TO argument read (path and ESMTP parameters), in characters.
#: RFC 5321 §4.5.3.1.3 limits a path to 256 octets; parameters (SIZE, ENVID, ORCPT...) fit in
#: the rest. aiosmtpd's parser is quadratic in a long path: "a." repeated over 200 KB took
#: 3.3 s of the loop, every session waiting (ENGAGE_SMTP_MAX_LINE_LENGTH allows 64 KB lines).
MAX_PATH_ARGUMENT = 4096
#: Bytes of 250 replies held back to go out together (InjectionSMTP.push): a pipelined
#: group's replies are a few hundred bytes; past this, they go out and the session waits on TCP.
MAX_HELD_REPLIES = 16384
#: Seconds a closing reply (421) may wait for a client that does not read before the
#: connection is dropped (InjectionSMTP.close_with).
CLOSE_TIMEOUT = 2.0
#: A session yields to the others after this many replies (InjectionSMTP.push): commands a
#: client pipelined are read from its buffer without waiting, and 40 sessions each with
#: megabytes of them had kept an honest session waiting 7-13 s for a NOOP's reply.
YIELD_EVERY = 64
# An RFC 2047 encoded word's shape, =?charset?encoding?text?=: aiosmtpd's parser decodes it in a path (<=?utf-8?b?YWRtaW4=?=@b.c> is admin@b.c
# to it, =0D=0A a CR LF), and one must not appear in an address (RFC 2047 §5 (3)).
# Each part without "?" (as email._header_value_parser's split of a word), so the search is
# linear: with a lazy ".*?" for the text, "=?a?b?x" repeated over a 56 KB line took 2.3 s.
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[^?]*\?[^?]*\?=")
# A return path is stored as text and written into Return-Path: no control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """The listener's settings, read once from ``django.conf.settings`` by the command."""

    hostname: str
    tls_context: ssl.SSLContext | None
    plaintext_auth: bool
    max_message_size: int
    max_line_length: int
    max_rcpts: int
    max_connections: int
    max_connections_per_key: int
    timeout: int
    auth_attempts: int
    shutdown_grace: int
    #: ``ENGAGE_SMTP_MAX_CONNECTIONS_PER_IP``: sessions from one client IP address at once.
    max_connections_per_ip: int = 50
    #: Threads for the key checks and the policy's view (few: one per AUTH, one per key
    #: every ``key_check_seconds``).
    threads: int = 16
    #: Groups of accepted messages stored at once, each on its own database connection
    #: (:class:`GroupStore`). One: while its group commits, every message that arrives joins
    #: the next group, so groups are as large as the load makes them. With two (then on two
    #: threads), the groups were half as large and the listener took 1.17 ms of CPU per
    #: message against 0.96 with one (bench/smtp_injection.py, 10 sessions: 758 → 958 msg/s,
    #: 32 → 40 % of accept-and-discard; bench/RESULTS.md, session 14).
    store_connections: int = 1
    #: Seconds one group's statement (with its connect) may take; past it, the statement is
    #: cancelled on the server, its socket shut down if no answer comes (``ABORT_GRACE``),
    #: each of its sessions is answered ``451 4.3.0`` and the connection is dropped: at most
    #: ``store_timeout + 3 * ABORT_GRACE`` seconds, however dead the server (a75c2e7 relied on
    #: psycopg's cancellation, which then waits for the dead connection with no limit).
    store_timeout: float = 30.0
    #: Most messages stored in one statement (:class:`GroupStore`).
    max_group: int = 64
    #: Seconds the stored transmissions' ids are gathered before their generation is queued
    #: in one task (:class:`GroupStore`), so that the worker sends them as one batch. Each
    #: queueing is a Celery publish on the enqueue thread (pure Python under the GIL, which
    #: the loop then waits for): 0.25 s against 0.05 s gave 653-720 against 422-550 msg/s
    #: in alternating runs of bench/smtp_injection.py (bench/RESULTS.md, "The store on the
    #: loop"), for at most a quarter second more before generation starts. A whole task's
    #: worth (``max_group`` ids) is queued at once, without waiting for the window.
    enqueue_window: float = 0.25
    #: Seconds with nothing more stored after which the ids gathered are queued at once (the
    #: end of a burst: its last messages do not wait for the rest of ``enqueue_window``).
    #: At 0.02 s, a loaded machine's scheduling gaps (the listener, its clients and the
    #: worker sharing the cores) passed for idleness: the end-to-end bench's tasks held 15-18
    #: ids on average against 50 in the listener's own rounds, and SMTP-in to relay-out was
    #: 53 % of the REST rate against 66 % at 0.1 s (medians of 10 rounds each, bench/RESULTS.md,
    #: "Session 18").
    enqueue_idle: float = 0.1
    #: ``ENGAGE_SMTP_POLICY``'s callable (``smtp_injection.services.smtp_policy_load``), or None.
    policy: Callable[[PolicyView], object] | None = None
    #: ``ENGAGE_SMTP_POLICY_TIMEOUT``: seconds a policy may take per message.
    policy_timeout: float = 2.0
    #: Seconds a MAIL FROM's check of the session's key (revoked? still ``smtp/inject``?) is
    #: reused by the process's later MAIL FROMs with the same key.
    key_check_seconds: float = 2.0


def _collect_credentials(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """aiosmtpd's authenticator is synchronous: it only hands the credentials back, and
    :meth:`InjectionSMTP._verify` checks them in the thread pool."""
    return AuthResult(success=True, auth_data=auth_data)


def _authenticate(login: bytes, password: bytes) -> SmtpPrincipal | None:
    close_old_connections()
    try:
        return smtp_principal_authenticate(
            username=login.decode("utf-8", "replace"), password=password.decode("utf-8", "replace")
        )
    finally:
        close_old_connections()


def _enqueue(transmission_ids: list[int]) -> None:
    """Queue the generation of a stored group (one broker write); a failure is logged by the
    service and left to the scheduler (``transmissions.services.transmissions_due``)."""
    transmissions_generation_enqueue(transmission_ids=transmission_ids)


#: The most characters of message sources one group's statement carries (the first message
#: of a group goes whatever its size): 22 messages of 20 MiB in one statement ran past the
#: store's timeout, every session of the group got 451 (a small message that came with
#: them too) and the listener held 2.4 GB (an attacker's finding).
GROUP_MAX_CHARS = 32 * 1024 * 1024


def _group_size(pending: list[tuple[PreparedTransmission, asyncio.Future[int]]], max_group: int) -> int:
    """How many of ``pending`` (oldest first) the next group takes: at most ``max_group``, and
    no more than :data:`GROUP_MAX_CHARS` of sources together unless it is the first."""
    total = 0
    for index, (prepared, _future) in enumerate(pending[:max_group]):
        source = prepared.transmission.content.get("email_rfc822")
        total += len(source) if isinstance(source, str) else 0
        if total > GROUP_MAX_CHARS and index > 0:
            return index
    return min(len(pending), max_group)


class GroupStore:
    """Group commit across sessions (issue 13 D3, SMTP-INJECTION.md §5.5): each session's
    prepared message waits in ``pending``; a group is every message pending when one of the
    ``connections`` database connections is free (at most ``max_group``), stored in one
    statement and one commit (``smtp_injection.services.smtp_messages_store_async``), and
    each session gets its transmission id, or the group's exception, only after that
    commit: "250 means stored" holds for each; a group carries at most :data:`GROUP_MAX_CHARS`
    of sources (its first message whatever its size). Nothing waits to fill a group: a message that
    finds a connection free is stored at once, and those that arrive meanwhile form the next
    group, so the group grows with the load.

    The statement runs on the event loop itself, on an asyncio connection of the listener's
    own (psycopg ``AsyncConnection``, autocommit): no thread between the loop and the
    database. A connection that failed (or whose group ran over ``timeout`` seconds: the
    sessions get ``451``) is closed, and the next group connects again, so a PostgreSQL
    restart costs the groups in flight, not the process.

    The generation of what was stored is queued after the replies: the ids of the groups
    stored within ``enqueue_window`` seconds of the first go in one task message (at most
    ``max_group`` ids a task, on the enqueue thread: Celery's client is blocking), which the
    worker sends as one batch (``transmissions.sending.group_send``); a task's worth of ids
    is queued as soon as it is there, and the rest as soon as ``enqueue_idle`` seconds pass
    with nothing more stored (the end of a burst). The first group stored after such a pause
    (a lone message, a burst's first) is queued at once. Ids not queued when the process
    dies are started by the scheduler. The enqueue thread is a daemon and :meth:`close` waits
    for it at most :data:`ENQUEUE_GRACE` seconds: a broker that accepts connections and never
    answers (each publish then gives up after about four times ``ENGAGE_BROKER_TIMEOUT``)
    costs a shutdown those seconds, not forever, and what was not queued is left to the
    scheduler, as after a crash.

    What it saves, measured with bench/smtp_injection.py (bench/RESULTS.md, "group store"
    and "The store on the loop"): one statement, one commit (one WAL flush) and one broker
    write per group instead of per message, the SQL built once per process, and no hop to a
    thread and back per group.
    """

    def __init__(
        self,
        *,
        connections: int = 1,
        max_group: int = 64,
        enqueue_window: float = 0.25,
        enqueue_idle: float = 0.02,
        timeout: float = 30.0,
    ) -> None:
        self.max_group = max_group
        self.enqueue_window = enqueue_window
        self.enqueue_idle = enqueue_idle
        self.timeout = timeout
        self.to_enqueue: list[int] = []  # stored, generation not queued yet
        self.last_stored = -math.inf  # loop time the last group was stored
        self.enqueue_timer: asyncio.TimerHandle | None = None  # enqueue_window after the first
        self.idle_timer: asyncio.TimerHandle | None = None  # enqueue_idle after the last
        self.pending: list[tuple[PreparedTransmission, asyncio.Future[int]]] = []
        #: connections not storing a group now (None: not connected yet, or closed after a failure)
        self.idle: list[StoreConnection | None] = [None] * connections
        self.in_flight: set[asyncio.Task[None]] = set()
        #: groups of ids for the enqueue thread, in order (None: stop), and the one it is queueing
        self.enqueue_waiting: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self.enqueuing: list[int] | None = None
        # A daemon: a publish the broker never answers must not keep the process from exiting.
        self.enqueuer = threading.Thread(target=self._enqueue_run, name="smtp-enqueue", daemon=True)
        self.enqueuer.start()
        #: groups stored and messages in them (the listener logs the mean at shutdown)
        self.groups = 0
        self.messages = 0

    async def store(self, prepared: PreparedTransmission) -> int:
        """``prepared``'s transmission id once its group committed; raises what the group's
        statement raised (nothing of the group is stored then), or ``TimeoutError``."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.pending.append((prepared, future))
        self._flush()
        return await future

    def _flush(self) -> None:
        while self.pending and self.idle:
            size = _group_size(self.pending, self.max_group)
            group, self.pending = self.pending[:size], self.pending[size:]
            task = asyncio.get_running_loop().create_task(self._store_group(self.idle.pop(), group))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _store_group(
        self,
        store: StoreConnection | None,
        group: list[tuple[PreparedTransmission, asyncio.Future[int]]],
    ) -> None:
        held: list[StoreConnection | None] = [store]
        # In this process's monotonic clock (a step of the wall clock since the offset was
        # measured moves no deadline): the server is to begin the statement by then, or store nothing.
        deadline = time.monotonic() + self.timeout
        work = asyncio.ensure_future(_statement(held, [prepared for prepared, _ in group], deadline=deadline))
        try:
            ids = await self._settle(work, held)
        except Exception as error:  # psycopg.Error, TimeoutError...: none of the group is stored
            if work.done():
                if held[0] is not None:
                    await _close_quietly(held[0].database)
            else:  # abandoned (its socket shut down): closed whenever it ends
                work.add_done_callback(lambda done: _abandoned(done, held[0]))
            store = None
            for _prepared, future in group:
                if not future.done():
                    future.set_exception(error)
        else:
            store = held[0]
            self.groups += 1
            self.messages += len(ids)
            for (_prepared, future), transmission_id in zip(group, ids, strict=True):
                if not future.done():
                    future.set_result(transmission_id)
            loop = asyncio.get_running_loop()
            # The first group after enqueue_idle seconds with nothing stored (a lone message,
            # or a burst's first) is queued at once: its worker starts now, not once a task's
            # worth or the idle time has passed (bench/RESULTS.md, "Session 19").
            first = loop.time() - self.last_stored >= self.enqueue_idle
            self.last_stored = loop.time()
            self.to_enqueue += ids
            self._enqueue_full()
            if self.to_enqueue and first:
                self._enqueue_now()
            elif self.to_enqueue:
                if self.enqueue_timer is None:
                    self.enqueue_timer = loop.call_later(self.enqueue_window, self._enqueue_now)
                if self.idle_timer is not None:
                    self.idle_timer.cancel()
                self.idle_timer = loop.call_later(self.enqueue_idle, self._enqueue_now)
        finally:
            self.idle.append(store)
            self._flush()

    async def _settle(self, work: asyncio.Future[list[int]], held: list[StoreConnection | None]) -> list[int]:
        """``work``'s ids, or its exception; past ``timeout`` seconds, the statement is
        cancelled on the server (a lock wait ends there, nothing stored), then, if no answer
        came within ``ABORT_GRACE`` seconds, the connection's socket is shut down (a server
        that froze or vanished: psycopg's own cancellation would wait for its answer with no
        limit), and ``TimeoutError``. Ids that come back after the timeout (the commit beat
        the cancel) are the group's: it is stored."""
        done, _ = await asyncio.wait({work}, timeout=self.timeout)
        if not done and held[0] is not None:
            database = held[0].database
            try:
                await database.cancel_safe(timeout=ABORT_GRACE)
            except Exception:
                log.warning("smtp: cancelling a store statement over %ss failed", self.timeout, exc_info=True)
            done, _ = await asyncio.wait({work}, timeout=ABORT_GRACE)
            if not done:
                _shut_down(database)
                done, _ = await asyncio.wait({work}, timeout=ABORT_GRACE)
        if done:
            return work.result()
        work.cancel()
        raise TimeoutError(f"the group's statement ran over {self.timeout}s")

    def _enqueue_full(self) -> None:
        """Queue every whole task (``max_group`` ids) gathered so far at once; the rest waits for
        the window. A busy listener's worker starts within one task's worth of messages rather
        than a window later (bench/RESULTS.md, "session 16")."""
        while len(self.to_enqueue) >= self.max_group:
            ids, self.to_enqueue = self.to_enqueue[: self.max_group], self.to_enqueue[self.max_group :]
            self.enqueue_waiting.put(ids)
        if not self.to_enqueue:
            self._timers_cancel()

    def _timers_cancel(self) -> None:
        for timer in (self.enqueue_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        self.enqueue_timer = self.idle_timer = None

    def _enqueue_now(self) -> None:
        """Queue the generation of the ids gathered since the timers started, in tasks of at
        most ``max_group`` ids, on the enqueue thread."""
        self._timers_cancel()
        ids, self.to_enqueue = self.to_enqueue, []
        for start in range(0, len(ids), self.max_group):
            self.enqueue_waiting.put(ids[start : start + self.max_group])

    def _enqueue_run(self) -> None:
        """The enqueue thread: queue each group of ids in turn (:func:`_enqueue`) until None."""
        while (ids := self.enqueue_waiting.get()) is not None:
            self.enqueuing = ids
            try:
                _enqueue(ids)
            except Exception:  # the service logs the broker's errors; anything else, here
                log.exception("smtp: queueing the generation of %s failed: the scheduler will start them", ids)
            self.enqueuing = None

    async def close(self) -> None:
        """Wait for the groups in flight, queue what they stored, close the connections, and
        stop the enqueue thread once it queued the rest, or after :data:`ENQUEUE_GRACE`
        seconds: then the ids it did not queue are logged (a warning) and left to the
        scheduler, and the thread, a daemon, is left to its publish."""
        while self.in_flight or self.pending:
            await asyncio.sleep(0.01)
        self._enqueue_now()
        for store in self.idle:
            if store is not None:
                await _close_quietly(store.database)
        self.idle = []
        self.enqueue_waiting.put(None)
        deadline = time.monotonic() + ENQUEUE_GRACE
        while self.enqueuer.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.enqueuer.is_alive():
            return
        left = list(self.enqueuing or [])
        with contextlib.suppress(queue.Empty):  # the groups not begun, up to the None put above
            while (ids := self.enqueue_waiting.get_nowait()) is not None:
                left += ids
        self.enqueue_waiting.put(None)  # so the thread ends after its publish
        log.warning(
            "smtp: the broker took no task within %ss of shutdown: transmissions %s are stored and not queued, "
            "the scheduler will start them", ENQUEUE_GRACE, left,
        )  # fmt: skip


#: Seconds :meth:`GroupStore.close` waits for the enqueue thread to queue what is left before
#: the listener stops without it (stored all the same: the scheduler starts it a minute later).
#: A publish takes a millisecond, or gives up after about four times ``ENGAGE_BROKER_TIMEOUT``.
ENQUEUE_GRACE = 5.0


#: Seconds a store statement over its timeout is given to answer the server-side cancel,
#: then to end once its socket is shut down (:meth:`GroupStore._settle`).
ABORT_GRACE = 2.0


async def _statement(
    held: list[StoreConnection | None], prepared: list[PreparedTransmission], *, deadline: float
) -> list[int]:
    """Connect (``held[0]`` when None, closed, or ended by the server while idle) and store
    ``prepared`` unless the server begins the statement after ``deadline`` (a
    ``time.monotonic()`` value, put in the server's clock by :meth:`StoreConnection.server_time`):
    the ids."""
    store = held[0]
    if store is not None and not store.database.closed and _ended_while_idle(store.database):
        await _close_quietly(store.database)
    if store is None or store.database.closed:
        store = held[0] = await smtp_store_connect()
    return await smtp_messages_store_async(
        database=store.database, prepared=prepared, deadline=store.server_time(deadline)
    )


def _ended_while_idle(database: AsyncConnection[Any]) -> bool:
    """Whether the server wrote to (or closed) ``database`` while it stored nothing: an idle
    connection in autocommit is sent nothing unless it ends (``pg_terminate_backend``, a
    restart, an idle timeout: a FATAL message, then end of file). Such a connection is
    replaced before the group is sent on it, rather than the group answered 451. One
    ``poll`` of the socket with no wait."""
    try:
        readable, _, _ = select.select([database.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _shut_down(database: AsyncConnection[Any]) -> None:
    """End ``database``'s socket both ways, under psycopg: a read waiting on it sees the end
    at once (``OperationalError``), however dead the server is."""
    try:
        duplicate = socket.socket(fileno=os.dup(database.pgconn.socket))
    except Exception:  # already closed or broken
        return
    with duplicate:
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _abandoned(work: asyncio.Future[list[int]], store: StoreConnection | None) -> None:
    if not work.cancelled() and work.exception() is None:
        log.error("smtp: a group answered 451 after its timeout was stored after all: %s", work.result())
    if store is not None:
        asyncio.get_running_loop().create_task(_close_quietly(store.database))


async def _close_quietly(database: AsyncConnection[Any]) -> None:
    try:
        await database.close()
    except Exception:  # a connection already broken: nothing left to close
        log.debug("smtp: closing a store connection failed", exc_info=True)


def _check_principal(principal: SmtpPrincipal) -> bool:
    close_old_connections()
    try:
        return smtp_principal_check(principal=principal)
    finally:
        close_old_connections()


def _run_policy(policy: Callable[[PolicyView], object], view: PolicyView) -> object:
    """``policy(view)`` on a policy thread. What the policy raises that is not an
    ``Exception`` (``SystemExit``, ``KeyboardInterrupt``), and ``StopIteration`` (which an
    asyncio future refuses: its 451 came only at the time limit), comes back as a
    ``RuntimeError`` from it: carried to the event loop as it was, ``SystemExit`` ended the
    listener without its shutdown (an attacker's finding). The listener answers it ``451``
    like any policy error."""
    close_old_connections()
    try:
        return policy(view)
    except (StopIteration, StopAsyncIteration) as exc:
        raise RuntimeError(f"the policy raised {type(exc).__name__}") from exc
    except Exception:
        raise
    except BaseException as exc:
        raise RuntimeError(f"the policy raised {type(exc).__name__}") from exc
    finally:
        close_old_connections()


def _close_connections(barrier: threading.Barrier) -> None:
    try:
        barrier.wait(timeout=5)
    except threading.BrokenBarrierError:
        pass
    connections.close_all()


class Listener:
    """The shared state of one process's sessions: the open ones, the per-key counts, the
    thread pool, and whether it is shutting down."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self.sessions: set[InjectionSMTP] = set()
        self.per_key: Counter[int] = Counter()
        self.per_ip: Counter[str] = Counter()
        self.executor = ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="smtp-db")
        # Policies run apart from the database pool: one that hangs past its time limit keeps
        # its thread (a thread cannot be stopped) but never holds up acceptance, nor the
        # process's exit (PolicyThreads).
        self.policy_executor = PolicyThreads(config.threads) if config.policy is not None else None
        # Accepted messages are stored in groups (one statement per group); generation is
        # queued per group, off the path to the 250; one lost by a crash is started by the
        # scheduler.
        self.store = GroupStore(
            connections=config.store_connections,
            max_group=config.max_group,
            enqueue_window=config.enqueue_window,
            enqueue_idle=config.enqueue_idle,
            timeout=config.store_timeout,
        )
        self.closing = False
        self.server: asyncio.Server | None = None
        # key id -> (monotonic time until which the answer holds, whether the key may inject)
        self.key_checks: dict[int, tuple[float, bool]] = {}

    def protocol(self) -> InjectionSMTP:
        config = self.config
        return InjectionSMTP(
            InjectionHandler(self),
            listener=self,
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.hostname,
            ident="ESMTP Engage",
            tls_context=config.tls_context,
            require_starttls=config.tls_context is not None and not config.plaintext_auth,
            timeout=config.timeout,
            auth_required=True,
            auth_require_tls=not config.plaintext_auth,
            authenticator=_collect_credentials,
            # Per connection; "*" must be large (aiosmtpd's default is 20 per command):
            # 1000 RCPT x 100 messages per connection (SMTP-INJECTION.md §5.2).
            command_call_limit={"STARTTLS": 2, "*": 10_000_000},
        )

    async def start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self.protocol, host, port, reuse_address=True)
        return self.server

    async def shutdown(self) -> None:
        """Stop accepting; ``421 4.3.2`` to every session not in DATA; wait for DATA in
        flight (its reply sent, then ``421 4.3.2``) up to the grace period; close the rest."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        await asyncio.gather(
            *(session.close_with(SHUTTING_DOWN) for session in list(self.sessions) if not session.in_data)
        )
        deadline = time.monotonic() + self.config.shutdown_grace
        while any(session.in_data for session in self.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.gather(*(session.close_with(SHUTTING_DOWN) for session in list(self.sessions)))
        # Each pool thread closes its own database connection (one task per thread: the
        # barrier keeps a thread from taking two).
        barrier = threading.Barrier(self.config.threads)
        closing = [self.executor.submit(_close_connections, barrier) for _ in range(self.config.threads)]
        await asyncio.gather(*(asyncio.wrap_future(future) for future in closing))
        self.executor.shutdown(wait=True)
        await self.store.close()
        if self.store.groups:
            log.info("smtp: %d message(s) stored in %d group(s)", self.store.messages, self.store.groups)
        if self.policy_executor is not None:
            self.policy_executor.shutdown(wait=False, cancel_futures=True)
            if self.policy_executor.running:
                log.warning(
                    "smtp: %d policy call(s) still running after the shutdown: exiting without them",
                    self.policy_executor.running,
                )

    def policy_calls_running(self) -> int:
        """Policy calls begun and not returned (after :meth:`shutdown`: those left running)."""
        return self.policy_executor.running if self.policy_executor is not None else 0

    async def principal_valid(self, principal: SmtpPrincipal) -> bool:
        """Whether ``principal``'s key may still inject (:func:`smtp_principal_check`), the
        answer reused for ``key_check_seconds``. Raises what the lookup raised."""
        now = time.monotonic()
        cached = self.key_checks.get(principal.key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        loop = asyncio.get_running_loop()
        valid = await loop.run_in_executor(self.executor, _check_principal, principal)
        self.key_checks[principal.key_id] = (now + self.config.key_check_seconds, valid)
        return valid

    async def policy_decide(self, injection: Injection, api: MsysApi) -> PolicyAccept | str:
        """Ask ``ENGAGE_SMTP_POLICY`` about one message (SMTP-INJECTION.md §5.8): its checked
        :class:`PolicyAccept` (an empty one without a policy), or the reply line to refuse
        the message with: the policy's :class:`PolicyReject` reply; ``451 4.3.0`` (logged)
        when it raised, ran over ``policy_timeout`` seconds or answered something
        :func:`policy_decision_check` refuses; the check's ``550 5.6.0`` for a campaign id
        over 64 bytes."""
        policy = self.config.policy
        if policy is None or self.policy_executor is None:
            return PolicyAccept()
        view = smtp_policy_view(injection=injection, api=api)
        future = self.policy_executor.submit(_run_policy, policy, view)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(future), self.config.policy_timeout)
        except TimeoutError:
            log.error("smtp: the policy ran over %ss for a message from %s: answered 451",
                      self.config.policy_timeout, injection.client_address)  # fmt: skip
            return POLICY_FAILED.line()
        except Exception:
            log.exception("smtp: the policy raised for a message from %s: answered 451", injection.client_address)
            return POLICY_FAILED.line()
        try:
            decision = policy_decision_check(answer)
        except PolicyDecisionError as exc:
            log.error("smtp: the policy's answer cannot be used (%s): answered 451", exc.detail)
            return exc.reply.line()
        except MsysApiError as exc:
            return exc.reply.line()
        if isinstance(decision, PolicyReject):
            return decision.reply.line()
        return decision


class _Session(Session):
    """aiosmtpd's session without ``login_data``, deprecated and still set by aiosmtpd 1.4 at
    each successful AUTH (a warning in the log each time); Engage reads ``auth_data``."""

    @property
    def login_data(self) -> Any:
        return None

    @login_data.setter
    def login_data(self, value: Any) -> None:
        pass


class InjectionSMTP(SMTP):
    """aiosmtpd's ``SMTP`` with the listener's caps, async key checks and enhanced codes."""

    AuthLoginUsernameChallenge = "Username:"  # SparkPost's (SMTP-INJECTION.md §2.2)
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: Any, *, listener: Listener, **kwargs: Any) -> None:
        self.listener = listener
        # Read by SMTP.__init__ for the stream reader's limit (a class attribute there).
        self.line_length_limit = listener.config.max_line_length
        self.in_data = False
        self.principal: SmtpPrincipal | None = None
        self.failed_auths = 0
        self._refused = False
        self._counted = False
        self._ip = ""
        self._held = bytearray()  # 250 replies not yet written (push)
        self._replies = 0  # replies pushed (push yields to the other sessions every YIELD_EVERY)
        self.closed = False  # the closing reply is decided: nothing more is answered or stored
        self._closing_reply: str | None = None  # that reply, the one push still sends
        super().__init__(handler, **kwargs)

    # --- connections -------------------------------------------------------------------------

    def _create_session(self) -> Session:
        return _Session(self.loop)

    # --- commands ----------------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """MAIL FROM's and RCPT TO's path, as aiosmtpd's own ``SMTP._getaddr``: the address and
        the rest of the argument (its ESMTP parameters). The everyday form, ``<local@domain>``
        with a dot-atom local part and a host name, is read with one regular expression; any
        other (the null path ``<>``, a quoted local part, a domain literal, a comment, UTF-8,
        no angle brackets) goes to aiosmtpd's parser, which builds a token list from
        ``email._header_value_parser`` and defines a ``typing.Protocol`` class on each call:
        10 % of the listener's samples under bench/smtp_injection.py (py-spy, two calls per
        message; bench/RESULTS.md, "The store on the loop"). Both give the same answer for
        every everyday path (tests/smtp_injection/test_listener.py). A path aiosmtpd's parser
        raises on (``IndexError`` for ``<++"@a>"@``) is a syntax error here, not a ``451``, and
        so is a path holding an RFC 2047 encoded word's shape, which aiosmtpd's parser would
        decode into an address the client never wrote (``_ENCODED_WORD``), and an argument
        over :data:`MAX_PATH_ARGUMENT` characters."""
        if len(arg) > MAX_PATH_ARGUMENT:
            return None, None  # RFC 5321 §4.5.3.1.3: a path is at most 256 octets
        if "=?" in arg and _ENCODED_WORD.search(arg):
            return None, None  # a syntax error: the envelope holds only what the client wrote
        simple = _SIMPLE_PATH.match(arg)
        if simple is None:
            try:
                return super()._getaddr(arg)
            except Exception:  # e.g. IndexError from email._header_value_parser on <++"@a>"@
                return None, None  # a syntax error, as for any path it cannot read
        address, rest = simple.group(1), simple.group(2) or ""
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # a new connection (not the STARTTLS switch)
            listener = self.listener
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) else ""
            reply = None
            if listener.closing:
                reply = SHUTTING_DOWN
            elif len(listener.sessions) >= listener.config.max_connections:
                reply = TOO_MANY_CONNECTIONS
            elif listener.per_ip[ip] >= listener.config.max_connections_per_ip:
                reply = TOO_MANY_IP_CONNECTIONS
            if reply is not None:
                transport.write(reply.encode("ascii") + b"\r\n")  # type: ignore[attr-defined]
                transport.close()
                self._refused = True
                return
            listener.sessions.add(self)
            listener.per_ip[ip] += 1
            self._ip = ip
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self in self.listener.sessions:
            self.listener.sessions.discard(self)
            self.listener.per_ip[self._ip] -= 1
            if self.listener.per_ip[self._ip] <= 0:
                del self.listener.per_ip[self._ip]
        self._uncount()
        super().connection_lost(error)

    def _uncount(self) -> None:
        if self._counted and self.principal is not None:
            self.listener.per_key[self.principal.key_id] -= 1
            if self.listener.per_key[self.principal.key_id] <= 0:
                del self.listener.per_key[self.principal.key_id]
            self._counted = False

    def deauthenticate(self) -> None:
        """Forget the session's AUTH: MAIL, RCPT and DATA are ``530`` until the next AUTH."""
        self._uncount()
        self.principal = None
        if self.session is not None:
            self.session.authenticated = False
            self.session.auth_data = None

    def _stream_transport(self) -> asyncio.Transport | None:
        """The connection's transport (aiosmtpd types it as a ``BaseTransport``; a stream
        server's is a read-write ``Transport``, TLS or not)."""
        return cast("asyncio.Transport | None", self.transport)

    async def close_with(self, reply: str) -> None:
        """Send ``reply`` (a 421) and close the connection. From then on the session answers
        nothing, stores nothing and handles no command it had already read (its handler is
        cancelled): a closing transport still sends what is written to it, and aiosmtpd
        goes on with the lines in its buffer until the connection is lost. A client that
        does not read gets :data:`CLOSE_TIMEOUT` seconds for the reply and what is still
        unsent, then the connection is dropped: a stopping listener waits on no client."""
        transport = self._stream_transport()
        if transport is None or transport.is_closing() or self.closed:
            return
        # Closed before the reply goes: while it is written (the push may wait), the session's
        # handler goes on with the lines it had read, and a DATA it reached was stored and
        # answered nothing: its client had the 421 for a message delivered (an attacker's
        # finding at shutdown), or a 354 after the 421. Only the closing reply goes now.
        self.closed, self._closing_reply = True, reply
        try:
            await asyncio.wait_for(self.push(reply), CLOSE_TIMEOUT)
        except (ConnectionError, RuntimeError, TimeoutError):
            self._close(transport, abort=True)
            return
        self._close(transport, abort=False)

    def _close(self, transport: asyncio.Transport, *, abort: bool) -> None:
        self.closed = True
        if abort:
            transport.abort()
        elif not transport.is_closing():  # (closed while the reply went: nothing to add)
            unsent = _unsent(transport)  # before close: a closed TLS transport has no buffer to ask
            transport.close()
            if unsent:
                self.loop.call_later(CLOSE_TIMEOUT, transport.abort)
        handler = self._handler_coroutine
        if handler is not None and handler is not asyncio.current_task():
            handler.cancel()  # the session's own task ends at its next wait (closed: nothing done before)

    # --- replies -----------------------------------------------------------------------------

    async def push(self, status: Any) -> None:
        """Send the reply ``status``, as aiosmtpd's ``push``, with every reply printable ASCII
        with an enhanced code, and 250s held back to go out together (RFC 2920 §3.2: a
        server should answer a group of pipelined commands as a unit).

        A ``250`` is held until the session next waits (the loop runs the flush then: the
        next line is not buffered yet, or the session awaits its store) or until another
        reply is sent, which goes out after it in the same write. So a pipelining client's
        final dot, MAIL, RCPT and DATA are answered with one write and one TLS record, not
        four: for 200 pipelined messages in one session, the listener's ``sendto`` calls
        fell from 1,242 to 629 (strace; bench/RESULTS.md, "Session 17"). Every other reply,
        and so every one that may be followed by a close (221, 421, 502) or a TLS switch
        (220), is written at once, after what was held before it.

        A 250 is held only while the connection has nothing waiting to be sent and less than
        :data:`MAX_HELD_REPLIES` bytes are held; otherwise it goes with what was held through
        aiosmtpd's ``push``, which waits while the connection's buffer is over its high-water
        mark. So a client that sends and never reads is held back by TCP, as before, and its
        replies cannot grow the listener's memory (tests/smtp_injection/test_listener.py)."""
        final = status is self._closing_reply  # close_with's reply: it goes, closed or not
        if isinstance(status, str):
            # Every reply is printable ASCII (RFC 5321 §4.2), whoever wrote its text.
            status = reply_text(_OWN_REPLIES.get(status, status))
            match = _NO_ENHANCED.match(status)
            if match is not None:
                status = f"{status[:4]}{match.group(1)}.5.0 {status[4:]}"
            status = _HELP.sub("250 2.0.0 ", status)
            reply = status.encode("ascii")
        else:
            reply = status
        if self.closed and not final:
            return
        self._replies += 1
        if self._replies % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # the other sessions' turn (the held replies go out too)
            if self.closed and not final:
                return
        transport = self._stream_transport()
        if (
            reply[:3] == b"250"
            and len(self._held) + len(reply) < MAX_HELD_REPLIES
            and transport is not None
            and not transport.is_closing()
            and _unsent(transport) == 0
        ):
            if not self._held:
                self.loop.call_soon(self._write_held)
            self._held += reply + b"\r\n"
            return
        if self._held:
            reply = bytes(self._held) + reply
            self._held.clear()
        await super().push(reply)

    def _write_held(self) -> None:
        """Write the held 250 replies (:meth:`push`), unless the connection has gone."""
        held, self._held = bytes(self._held), bytearray()
        if held and self.transport is not None and not self.transport.is_closing():
            self._writer.write(held)

    # --- AUTH --------------------------------------------------------------------------------

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, collected: AuthResult) -> AuthResult:
        if self.closed:  # its 421 is sent: an AUTH read after it is not tried
            return AuthResult(success=False, handled=True)
        if not collected.success:  # malformed or aborted: aiosmtpd has answered
            return collected
        credentials = cast(LoginPassword, collected.auth_data)  # aiosmtpd's PLAIN and LOGIN give a LoginPassword
        loop = asyncio.get_running_loop()
        try:
            principal = await loop.run_in_executor(
                self.listener.executor, _authenticate, credentials.login, credentials.password
            )
        except Exception:
            log.exception("smtp: the key lookup failed")
            await self.push(AUTH_UNAVAILABLE)
            return AuthResult(success=False, handled=True)
        if principal is None:
            self.failed_auths += 1
            log.info("smtp: AUTH failed for %r (%d)", self.session.peer if self.session else None, self.failed_auths)
            if self.failed_auths >= self.listener.config.auth_attempts:
                await self.close_with(TOO_MANY_AUTH_FAILURES)
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False)  # 535 5.7.8 Authentication credentials invalid
        per_key = self.listener.per_key
        if per_key[principal.key_id] >= self.listener.config.max_connections_per_key:
            await self.close_with(TOO_MANY_KEY_CONNECTIONS)
            return AuthResult(success=False, handled=True)
        self._uncount()  # an AUTH after STARTTLS reset the session: counted once a connection
        per_key[principal.key_id] += 1
        self.principal, self._counted = principal, True
        return AuthResult(success=True, auth_data=principal)

    async def smtp_STARTTLS(self, arg: str) -> None:
        """STARTTLS once: inside TLS it is ``503 5.5.1`` (RFC 3207 §4: a second one is not
        allowed). aiosmtpd started a second handshake inside the first, and the AUTH after
        it counted the key a second time (an attacker's finding: 25 such sessions left the
        key refused with ``421`` until a restart)."""
        if self._tls_protocol is not None:
            await self.push(TLS_ACTIVE)
            return
        await super().smtp_STARTTLS(arg)

    # --- DATA --------------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await self._data(arg)
        finally:
            self.in_data = False
        if self.listener.closing:
            await self.close_with(SHUTTING_DOWN)

    async def _data(self, arg: str) -> None:
        """aiosmtpd 1.4.6's ``SMTP.smtp_DATA``, its replies and states the same, with the
        message read by :func:`data_read` (in runs, not line by line)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, refusal = await data_read(
                self._reader, size_limit=self.data_size_limit, line_limit=self.line_length_limit
            )
        except asyncio.CancelledError:  # the connection was lost during DATA (aiosmtpd's words)
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if refusal is not None:
            await self.push(refusal)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


_END_OF_DATA = b".\r\n"
_AFTER_CRLF = b"\r\n" + _END_OF_DATA  # the end of a payload, unless its first line is the dot


async def data_read(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_limit: int
) -> tuple[bytes, str | None]:
    """A DATA payload from ``reader``, up to the line that is a lone dot (RFC 5321
    §4.1.1.4), as aiosmtpd 1.4.6's ``SMTP.smtp_DATA`` reads it: ``(the message with CRLF
    line ends and dot-stuffing undone (§4.5.2), None)``, or ``(b"", the refusal)`` when it is
    over ``size_limit`` bytes (:data:`TOO_BIG`; None: no limit) or has a line over
    ``line_limit`` bytes with its CRLF (:data:`LINE_TOO_LONG`): aiosmtpd's refusals, in
    Engage's words (``_OWN_REPLIES``). Over both, :data:`TOO_BIG` (aiosmtpd answers the one
    it meets first, line by line). Only CRLF ends a line, so a lone dot after
    a bare LF or CR (``\\n.\\r\\n``, ``\\r.\\r\\n``) ends nothing: one DATA is never two
    messages (SMTP smuggling). The bytes after the dot stay in ``reader`` (the next
    pipelined commands).

    Why not aiosmtpd's loop: it awaits the reader once per line (each await slicing the
    line off the reader's buffer and moving the rest) and checks each line in Python: for the
    bench's 10 KB message of 120 lines, 290-340 µs against 55-80 µs read here in runs up to
    each ``.\\r\\n`` (bench/RESULTS.md, "Session 18"); its DATA loop was a fifth of the
    listener's samples (py-spy). tests/smtp_injection/test_data_read.py holds this to
    aiosmtpd's own loop on random streams.

    Memory: the payload once, then the message (``bytes``) made from it; past either limit
    nothing more is kept (aiosmtpd: "prevent memory pressure"). Lines are measured in each run
    as it arrives, only the line still open carried over (:func:`_line_check`): the whole
    payload checked at its end had been split into a list of its lines, and 19 MB of 4-byte
    lines peaked at 247 MiB more (38 MiB now, tracemalloc) and held the loop 340-360 ms
    (about 20 ms now; the reader fed 64 KB at a time, as a socket does).
    tests/smtp_injection/test_data_read_memory.py bounds it."""
    kept = bytearray()
    total = 0  # bytes before the dot line, as aiosmtpd counts them
    tail = b""  # the last 4 bytes read (none yet: the payload's first line is next)
    line, after_cr = 0, False  # the line still open: its length so far, whether it ends with CR
    too_big = too_long = False
    while True:
        try:
            piece = await reader.readuntil(_END_OF_DATA)
            closed = True  # it ends with CRLF: no line is open after it
        except asyncio.LimitOverrunError as exc:  # no ".\r\n" within the reader's limit: take what surely holds none
            piece = await reader.readexactly(exc.consumed)
            closed = False
        seen = piece if len(piece) >= len(_AFTER_CRLF) else tail + piece  # the last 5 bytes read, at least
        ended = seen.endswith(_AFTER_CRLF) or seen == _END_OF_DATA  # after a CRLF, or first
        size = len(piece) - (len(_END_OF_DATA) if ended else 0)
        total += size
        if not too_big:
            if size_limit and total > size_limit:
                too_big = True
                kept = bytearray()  # nothing more is kept (aiosmtpd: "prevent memory pressure")
            elif not too_long:
                if closed and not after_cr and line + size <= line_limit:  # no line over the limit, none open after
                    line = 0
                else:
                    line = _line_check(piece, size, line=line, after_cr=after_cr, limit=line_limit)
                    too_long, after_cr = line < 0, piece[size - 1 : size] == b"\r"
                if too_long:
                    kept = bytearray()
                else:
                    kept += piece
        tail = seen[-4:]
        if ended:
            break
    if too_big:
        return b"", TOO_BIG
    if too_long:
        return b"", LINE_TOO_LONG
    del kept[-len(_END_OF_DATA) :]
    if kept[:1] == b".":
        del kept[:1]
    body = bytes(kept)
    kept.clear()  # before the replace, which copies only when a line was dot-stuffed
    return body.replace(b"\r\n.", b"\r\n"), None


def _line_check(data: bytes, end: int, *, line: int, after_cr: bool, limit: int) -> int:
    """The length of the line still open after ``data[:end]``, the payload's next bytes, or
    -1 when one of their lines is over ``limit`` bytes with its CRLF. ``line``: the length of
    the line open before them (with a CR that ended them, ``after_cr``: with an LF first,
    they end it).

    Linear in ``end`` whatever the lines, nothing copied: each search (``bytes.rfind``, in C)
    looks for the last CRLF the open line may end with, so two searches cover at least
    ``limit`` bytes."""
    position = 0
    if after_cr and end and data[0] == 0x0A:  # a CRLF across two runs
        if line + 1 > limit:
            return -1
        position, line = 1, 0
    while True:
        reach = position + limit - line  # the open line's CRLF must end by here
        found = data.rfind(b"\r\n", position, min(reach, end))
        if found >= 0:
            position, line = found + 2, 0
        elif reach <= end:
            return -1
        else:
            return line + end - position


class InjectionHandler:
    """The aiosmtpd handler hooks: EHLO keywords, MAIL, RCPT and DATA."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    async def handle_EHLO(
        self, server: InjectionSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self, server: InjectionSMTP, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if server.principal is None:  # aiosmtpd's auth_required answers 530 before this
            return "530 5.7.0 Authentication required"
        try:
            valid = await self.listener.principal_valid(server.principal)
        except Exception:
            log.exception("smtp: the key check failed")
            return TEMPORARY_FAILURE
        if not valid:
            log.info("smtp: key %s revoked or without smtp/inject mid-session: AUTH again", server.principal.key_id)
            server.deauthenticate()
            return KEY_REVOKED
        # The reverse path is checked here, not after DATA: a client learns at MAIL FROM, before
        # it sends the message, that its sender will be refused (RFC 5321 §3.3), by the rule
        # the stored return path must pass (transmissions.payload). aiosmtpd 1.4 answers
        # "MAIL FROM:<>" 553 before this hook.
        if _CONTROL.search(address) or (address and address_problem(address) is not None):
            return BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: InjectionSMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.listener.config.max_rcpts:
            return TOO_MANY_RECIPIENTS
        if address_problem(address) is not None:
            return BAD_RECIPIENT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: InjectionSMTP, session: Any, envelope: Any) -> str:
        if server.closed:  # its 421 is sent: a message read after it is not stored (no 250 would go)
            return SHUTTING_DOWN
        if server.principal is None:  # aiosmtpd's auth_required answers 530 before this
            return "530 5.7.0 Authentication required"
        peer = session.peer if isinstance(session.peer, tuple) else ("", 0)
        injection = Injection(
            principal=server.principal,
            listener_hostname=self.listener.config.hostname,
            client_address=str(peer[0]),
            helo=session.host_name or "",
            tls=session.ssl is not None,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            client_port=peer[1] if isinstance(peer[1], int) else None,
            tls_version=_tls_version(server),
        )
        try:
            api = smtp_message_read(injection)
        except SmtpRefusal as exc:
            return exc.reply
        decision = await self.listener.policy_decide(injection, api)
        if isinstance(decision, str):
            return decision
        try:
            prepared = smtp_message_prepare(injection=injection, api=api, policy=decision)
        except SmtpRefusal as exc:
            return exc.reply
        except PolicyDecisionError as exc:
            log.error("smtp: the policy's answer cannot be used (%s): answered 451", exc.detail)
            return exc.reply.line()
        if server.closed:  # closed while the policy decided
            return SHUTTING_DOWN
        try:
            transmission_id = await self.listener.store.store(prepared)
        except Exception:
            log.exception("smtp: message from %s not stored", injection.client_address)
            return TEMPORARY_FAILURE
        log.debug("smtp: transmission %s stored (%d recipient(s))", transmission_id, len(injection.rcpt_tos))
        return f"250 2.0.0 OK {transmission_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("smtp: session error", exc_info=error)
        return TEMPORARY_FAILURE


class PolicyThreads(Executor):
    """``workers`` daemon threads (``smtp-policy-N``) that run the policy's calls, started as
    calls come. Not ``ThreadPoolExecutor``: the interpreter joins that pool's threads at exit,
    so a policy call that never returns (a network call without a timeout) held a SIGTERM'd
    listener forever after everything it accepted was committed; a daemon thread is left
    to it, and the process ends. :meth:`shutdown` never waits for a call (its message was
    answered ``451`` after ``ENGAGE_SMTP_POLICY_TIMEOUT``) and cancels those not begun."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.calls: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self.lock = threading.Lock()
        self.closed = False
        self.running = 0  # calls begun and not returned

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self.lock:
            if self.closed:
                raise RuntimeError("the policy threads are shut down")
            self.calls.put((future, functools.partial(fn, **kwargs) if kwargs else fn, args))
            if self.idle <= 0 and len(self.threads) < self.workers:
                thread = threading.Thread(target=self._run, name=f"smtp-policy-{len(self.threads)}", daemon=True)
                self.threads.append(thread)
                thread.start()
            else:
                self.idle -= 1
        return future

    def _run(self) -> None:
        while (call := self.calls.get()) is not None:
            future, fn, args = call
            if future.set_running_or_notify_cancel():
                with self.lock:
                    self.running += 1
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # the future carries it to the caller
                    future.set_exception(exc)
                with self.lock:
                    self.running -= 1
            with self.lock:
                self.idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self.lock:
            self.closed = True
        if cancel_futures:
            with contextlib.suppress(queue.Empty):
                while (call := self.calls.get_nowait()) is not None:
                    call[0].cancel()
        for _thread in self.threads:
            self.calls.put(None)
        if wait:
            for thread in self.threads:
                thread.join()


def _unsent(transport: asyncio.Transport) -> int:
    """Bytes written to ``transport`` and not yet sent; 0 once it is closing (asyncio's TLS
    transport raises ``AttributeError`` when asked after its connection is gone)."""
    if transport.is_closing():
        return 0
    return transport.get_write_buffer_size()


def _tls_version(server: InjectionSMTP) -> str | None:
    transport = server.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.version() if ssl_object is not None else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is a loopback address (``localhost`` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
