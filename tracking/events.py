"""The event buffer: tracking hits' events go to a Redis stream and are landed in PostgreSQL
in bulk (``analytics.landing``).

Why: the click redirect and the open pixel must answer in about a millisecond and must not
wait for PostgreSQL. So ``events_enqueue`` only XADDs JSON to the stream
``ENGAGE_EVENT_STREAM`` (one entry per event, one pipelined round trip per call). Events
that must not depend on Redis alone go through ``tracking.outbox`` instead. This module
also makes event ids and stamps events (:func:`events_stamp`), wherever they are written.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import redis
import redis.connection
from django.conf import settings

logger = logging.getLogger(__name__)

__all__ = [
    "event_id_new",
    "events_enqueue",
    "events_json",
    "events_redis",
    "events_stamp",
    "events_xadd",
]


#: The stream entry field that holds an event's JSON.
EVENT_FIELD = b"e"

# --- event ids ----------------------------------------------------------------------------
# Time-ordered 64-bit ids: milliseconds << 22 | node (10 bits) << 12 | sequence (12 bits).
# The node is random per process (re-drawn after fork), the sequence runs on within a
# millisecond and borrows the next millisecond when it wraps, so one process never repeats
# an id and two processes collide only if they drew the same node AND the same sequence in
# the same millisecond.
_id_lock = threading.Lock()
_id_state = {"node": random.getrandbits(10), "ms": 0, "seq": random.getrandbits(12)}


def _id_reseed() -> None:
    _id_state["node"] = random.getrandbits(10)
    _id_state["seq"] = random.getrandbits(12)


os.register_at_fork(after_in_child=_id_reseed)


def event_id_new(now_ms: int | None = None) -> str:
    """A new unique, time-ordered numeric event id (as SparkPost's, a decimal string)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        state = _id_state
        if ms <= state["ms"]:
            ms = state["ms"]
            seq = (state["seq"] + 1) & 0xFFF
            if seq == 0:
                ms += 1
        else:
            seq = state["seq"]
        state["ms"], state["seq"] = ms, seq
        return str(ms << 22 | state["node"] << 12 | seq)


# --- Redis ----------------------------------------------------------------------------------
_redis_clients: dict[tuple[str, float], redis.Redis] = {}
#: Seconds to connect to Redis, and to wait for one answer (above the lander's longest
#: blocking read, 500 ms): a Redis that hangs holds a tracking hit this long at most, then
#: the hit's events go to PostgreSQL instead (``tracking.outbox.events_record``).
REDIS_CONNECT_TIMEOUT = 0.5
REDIS_TIMEOUT = 2.0


def events_redis(timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """The Redis client of the event buffer, waiting at most ``timeout`` seconds for an
    answer (one connection pool per process, URL and timeout)."""
    key = (settings.REDIS_URL, timeout)
    client = _redis_clients.get(key)
    if client is None:
        client = _redis_clients[key] = redis.Redis.from_url(
            key[0], socket_connect_timeout=min(REDIS_CONNECT_TIMEOUT, timeout), socket_timeout=timeout
        )
    return client


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def events_stamp(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``events`` with ``event_id`` (unique numeric string) and ``timestamp`` (aware
    UTC now, ISO 8601) assigned where absent. An event keeps its id and time wherever it is
    then written (Redis, the outbox, the spool), so writing it twice lands it once.
    ValueError for an event without a ``type``."""
    now: str | None = None
    stamped: list[dict[str, Any]] = []
    for event in events:
        if not event.get("type"):
            raise ValueError("an event needs a type")
        record = dict(event)
        if not record.get("event_id"):
            record["event_id"] = event_id_new()
        if not record.get("timestamp"):
            if now is None:
                now = datetime.now(UTC).isoformat()
            record["timestamp"] = now
        stamped.append(record)
    return stamped


def events_json(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """Each stamped event as compact JSON (dates as ISO 8601, sets as lists)."""
    return [json.dumps(event, separators=(",", ":"), default=_json_default).encode() for event in events]


def events_enqueue(events: Sequence[dict[str, Any]]) -> None:
    """Buffer ``events`` (dicts keyed by Event column names) for landing in PostgreSQL.

    ``type`` is required; ``event_id`` and ``timestamp`` are assigned when absent
    (:func:`events_stamp`); any other missing column takes its default when landed.
    Keys that are not columns (``msg_size``, ``num_retries``, ``geo_ip``, ...) are kept in
    the ``extra`` JSON column. One Redis round trip per call; never touches PostgreSQL.
    Raises ``redis.RedisError`` when Redis does not take them: callers that must not lose
    an event use ``tracking.outbox.events_record``, which falls back to PostgreSQL.
    """
    if not events:
        return
    events_xadd(events_json(events_stamp(events)))


def events_xadd(payloads: list[bytes], *, timeout: float = REDIS_TIMEOUT) -> None:
    """XADD JSON-encoded events (:func:`events_json`) to the stream, waiting at most about
    ``timeout`` seconds for Redis (:func:`_follower_wait` when other threads write too).
    Returns once Redis acknowledged every one of them. Raises ``redis.ResponseError`` for an
    error reply, else ``redis.ConnectionError`` (or its ``TimeoutError``) for whatever goes
    wrong on the connection (closed, timed out, a reply that is not XADD's): the connection
    is dropped and the next call connects again. When it raises, none of ``payloads`` can be
    taken as stored, though Redis may hold some whose reply was lost (at least once: an
    event keeps its ``event_id``, so written again, to Redis or the outbox, it lands once).

    **Group write.** The calls in flight in this process (the threads of one worker) share
    one connection: a call queues its packed XADDs; if no write is in flight it leads, takes
    everything queued, sends it in one ``sendall``, reads the replies in order and hands each
    waiting call its own outcome (a reply read whole is an acknowledgement); otherwise it
    waits for a leader to do so, or to hand it the lead. A batch whose connection fails
    fails the calls whose replies were not read, and the calls queued behind it, at once
    (they go to the outbox: Redis is taken for down). Measured, and no gain: bench/RESULTS.md,
    "Click redirect: the group write (session 13)".

    A kept connection that Redis closed while it was idle (a restart, its ``timeout``
    setting, a NAT or load balancer dropping it) is found by the write; then the
    unacknowledged XADDs are sent once more on a new connection, so Redis is not taken for
    down. The commands are packed and the replies read here (redis-py only connects:
    address, password, database, TLS): redis-py's pooled ``xadd`` cost 290 µs per call
    against 138 µs for its ``pack_commands`` + ``read_response`` on a kept connection
    (2,000 calls, one client), and those were still 17-32 µs of CPU per click against 10 µs
    this way (``process_time`` over 5,000 calls, same Redis, the machine loaded)."""
    slot = _Slot(_xadd_packed(settings.ENGAGE_EVENT_STREAM, payloads), len(payloads))
    group = _group(timeout)
    with group.lock:
        group.queue.append(slot)
        if group.writing:
            slot.wake = wake = threading.Lock()
            wake.acquire()
        else:
            group.writing = True
            slot.state = _LEAD
    if slot.state is not _LEAD:
        given_up = _follow(group, slot, timeout)
        if given_up is not None:
            raise given_up
    if slot.state is _LEAD:
        _lead(group)
    error = slot.error
    if error is not None:
        raise error


# A call's place in the group write: queued, handed the lead, in a batch sent, answered.
_QUEUED, _LEAD, _SENT, _DONE = "queued", "lead", "sent", "done"
_UNANSWERED = redis.ConnectionError("no reply read")  # a slot's outcome until its replies are read


class _Slot:
    """One call of :func:`events_xadd` in its process's group: its packed XADDs, how many,
    its outcome (None once acknowledged, else the exception its caller raises) and the lock
    its thread waits on while another leads."""

    __slots__ = ("count", "error", "packed", "state", "wake")

    def __init__(self, packed: bytes, count: int) -> None:
        self.packed = packed
        self.count = count
        self.state = _QUEUED
        self.error: redis.RedisError | None = _UNANSWERED
        self.wake: threading.Lock | None = None


class _Group:
    """The XADD calls of this process to one Redis URL with one timeout: the queue, whether
    a leader is writing, and the one connection leaders write on (created on first use)."""

    __slots__ = ("conn", "lock", "queue", "writing")

    def __init__(self, conn: redis.connection.Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.queue: list[_Slot] = []
        self.writing = False


_groups: dict[tuple[str, float], _Group] = {}
_groups_lock = threading.Lock()


def _groups_reset() -> None:
    """A forked child must not write on its parent's sockets, nor wait on its parent's
    threads (granian forks its workers)."""
    global _groups, _groups_lock
    _groups = {}
    _groups_lock = threading.Lock()


os.register_at_fork(after_in_child=_groups_reset)


def _group(timeout: float) -> _Group:
    key = (settings.REDIS_URL, timeout)
    group = _groups.get(key)
    if group is None:
        with _groups_lock:
            group = _groups.get(key)
            if group is None:
                client = redis.Redis.from_url(
                    key[0], socket_connect_timeout=min(REDIS_CONNECT_TIMEOUT, timeout), socket_timeout=timeout
                )
                group = _groups[key] = _Group(client.connection_pool.make_connection())
    return group


def _connection(timeout: float) -> redis.connection.Connection:
    """The connection this process's XADDs with ``timeout`` are written on (tests use it)."""
    return _group(timeout).conn


def _follower_wait(timeout: float) -> float:
    """Seconds a call waits for the batch in flight: a leader's longest write (connect, one
    write and its replies, then a reconnect and one more, each read waiting ``timeout``)."""
    return 2 * (min(REDIS_CONNECT_TIMEOUT, timeout) + timeout)


def _follow(group: _Group, slot: _Slot, timeout: float) -> redis.TimeoutError | None:
    """Wait until ``slot`` is answered or handed the lead; None then. Past
    :func:`_follower_wait`, a slot still queued leaves the queue (never sent) and one in a
    batch in flight is given up (Redis may store it after all: at least once); returns the
    ``redis.TimeoutError`` to raise."""
    assert slot.wake is not None
    if slot.wake.acquire(timeout=_follower_wait(timeout)):
        return None
    with group.lock:
        if slot.state is _QUEUED:
            group.queue.remove(slot)
            return redis.TimeoutError("no XADD leader within the wait: not sent")
        if slot.state is _SENT:
            slot.state = _DONE  # the leader wakes it no more
            return redis.TimeoutError("the XADD batch in flight did not finish within the wait")
    return None  # answered or handed the lead as the wait ran out: as if woken


def _lead(group: _Group) -> None:
    """Write everything queued (this call's own slot included) as one batch, give each slot
    its outcome, and hand the lead to the first call queued meanwhile (or end the write)."""
    with group.lock:
        batch, group.queue = group.queue, []
        for slot in batch:
            slot.state = _SENT
    failure: redis.RedisError | None = _UNANSWERED
    try:
        failure = _batch_write(group.conn, batch)
    finally:
        with group.lock:
            woken = [slot for slot in batch if slot.state is _SENT]  # not given up by its caller
            if failure is not None:
                # The connection failed: the calls queued behind this batch fail now, unsent,
                # rather than each wait out a Redis that is down or hung.
                woken += group.queue
                group.queue = []
            for slot in woken:
                if slot.error is _UNANSWERED:
                    cause = failure or _UNANSWERED
                    slot.error = type(cause)(str(cause))  # one exception per raising thread
                slot.state = _DONE
            if group.queue:
                successor = group.queue[0]
                successor.state = _LEAD
                woken.append(successor)
            else:
                group.writing = False
        for slot in woken:
            if slot.wake is not None:
                slot.wake.release()


def _batch_write(conn: redis.connection.Connection, batch: list[_Slot]) -> redis.RedisError | None:
    """Send ``batch`` on ``conn`` and read its replies, setting each acknowledged slot's
    outcome; returns None, or the connection's failure (the slots left unanswered share it)."""
    kept = conn._sock is not None
    try:
        _batch_send(conn, batch)
        return None
    except (_Closed, ConnectionResetError, BrokenPipeError) as exc:
        conn.disconnect()
        if not kept:
            return redis.ConnectionError(str(exc) or type(exc).__name__)
    except Exception as exc:
        conn.disconnect()
        return _as_redis_error(exc)
    unanswered = [slot for slot in batch if slot.error is _UNANSWERED]
    if not unanswered:
        return None
    try:  # once, on a new connection: Redis closed the kept one while it was idle
        _batch_send(conn, unanswered)
        return None
    except Exception as again:
        conn.disconnect()
        return _as_redis_error(again)


def _batch_send(conn: redis.connection.Connection, batch: list[_Slot]) -> None:
    """Write the XADDs of ``batch`` on ``conn`` (connecting it first if needed) in one
    ``sendall`` and read their replies in order; each slot whose replies were all read gets
    its outcome (None, or the ``redis.ResponseError`` of its first error reply). Raises on a
    connection failure (the slots not yet answered keep ``_UNANSWERED``); data left after the
    last reply puts the connection out of step, so then no slot of the batch is answered."""
    if conn._sock is None:
        conn.connect()
    sock = conn._sock
    assert sock is not None
    sock.sendall(batch[0].packed if len(batch) == 1 else b"".join(slot.packed for slot in batch))
    reader = _Replies(sock)
    for slot in batch:
        error = reader.read(slot.count)
        slot.error = None if error is None else redis.ResponseError(error)
    if reader.buffer:
        for slot in batch:
            slot.error = _UNANSWERED
        raise redis.ConnectionError(f"unexpected data after the XADD replies: {reader.buffer[:40]!r}")


def _as_redis_error(exc: BaseException) -> redis.RedisError:
    if isinstance(exc, redis.RedisError):
        return exc
    return redis.ConnectionError(f"XADD failed: {type(exc).__name__}: {exc}")


class _Closed(redis.ConnectionError):
    """Redis closed the connection (an empty read)."""


_packed_heads: dict[str, bytes] = {}


def _xadd_packed(stream: str, payloads: list[bytes]) -> bytes:
    """``XADD <stream> * e <payload>`` for each payload, as RESP (the Redis protocol's
    array of bulk strings, binary-safe by their lengths)."""
    head = _packed_heads.get(stream)
    if head is None:
        name = stream.encode()
        head = _packed_heads[stream] = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\n%s\r\n" % (
            len(name),
            name,
            EVENT_FIELD,
        )
    return b"".join(b"%s$%d\r\n%s\r\n" % (head, len(payload), payload) for payload in payloads)


class _Replies:
    """Reads XADD replies from ``sock``: each ``$<n>\\r\\n<id>\\r\\n``, or ``-<error>\\r\\n``.
    A closed connection raises ``_Closed``, anything else that is not an XADD reply
    ``redis.ConnectionError``; what was read past the replies asked for stays in ``buffer``."""

    __slots__ = ("buffer", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed("Redis closed the connection")
        self.buffer += chunk

    def read(self, count: int) -> str | None:
        """Read ``count`` replies; returns the first error reply's message, or None."""
        error = None
        while count:
            buffer = self.buffer
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                self._more()
                continue
            kind = buffer[:1]
            if kind == b"$":
                try:
                    length = int(buffer[1:line_end])
                except ValueError:
                    raise redis.ConnectionError(f"unexpected reply to XADD: {buffer[:40]!r}") from None
                end = line_end + 2 if length < 0 else line_end + 2 + length + 2  # $-1: a nil reply
                if len(buffer) < end:
                    self._more()
                    continue
                self.buffer = buffer[end:]
            elif kind == b"-":
                error = error or buffer[1:line_end].decode("utf-8", "replace")
                self.buffer = buffer[line_end + 2 :]
            else:
                raise redis.ConnectionError(f"unexpected reply to XADD: {buffer[:40]!r}")
            count -= 1
        return error
