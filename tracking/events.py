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
import re
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
    """Each stamped event as compact JSON (dates as ISO 8601, sets as lists), with a NUL or a
    lone surrogate in any string as U+FFFD: PostgreSQL's ``jsonb`` refuses both (``\\u0000``,
    an unpaired ``\\ud800``), and a Subject's encoded word may decode to them (RFC 2047
    allows any octet): the relayed message's ``delivered`` mark failed, so the message was
    claimed again and sent again, five times (an attacker's finding)."""
    out = []
    for event in events:
        text = json.dumps(event, separators=(",", ":"), default=_json_default)
        if "\\u0000" in text or "\\ud" in text:  # rare: a NUL, a surrogate (or an emoji's pair)
            text = json.dumps(_unpaired_replaced(event), separators=(",", ":"), default=_json_default)
        out.append(text.encode())
    return out


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unpaired_replaced(value: Any) -> Any:
    """``value`` (a JSON-able event) with every NUL and surrogate code point in its strings
    (keys included) as U+FFFD; a character beyond the BMP is one code point, not a pair, so
    it is kept."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_unpaired_replaced(key): _unpaired_replaced(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_unpaired_replaced(item) for item in value]
    return value


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
    """XADD JSON-encoded events (:func:`events_json`) to the stream, one round trip, waiting
    at most ``timeout`` seconds for Redis. Raises ``redis.RedisError`` (the connection is
    dropped, the next call connects again); whatever goes wrong on the connection (a closed
    socket, a timeout, a reply that is not XADD's) is a ``redis.ConnectionError``.

    A kept connection that Redis closed while it was idle (a restart, its ``timeout``
    setting, a NAT or load balancer dropping it) is found by the write; then the events are
    sent once more on a new connection, so Redis is not taken for down. Sent twice, an event
    keeps its ``event_id`` and lands once.

    On this thread's own connection (redis-py connects it: address, password, database,
    TLS), the commands packed here and the replies read here: the click path's one Redis
    write. redis-py's pooled ``xadd`` cost 290 µs per call against 138 µs for its
    ``pack_commands`` + ``read_response`` on a kept connection (2,000 calls, one client), and
    those were still 17-32 µs of CPU per click against 10 µs this way (``process_time``
    over 5,000 calls, same Redis, the machine loaded)."""
    packed = _xadd_packed(settings.ENGAGE_EVENT_STREAM, payloads)
    conn = _thread_connection(timeout)
    kept = conn._sock is not None
    try:
        _xadd_send(conn, packed, len(payloads))
    except (_Closed, ConnectionResetError, BrokenPipeError) as exc:
        conn.disconnect()
        if not kept:
            raise redis.ConnectionError(str(exc) or type(exc).__name__) from exc
        try:
            _xadd_send(conn, packed, len(payloads))  # once, on a new connection
        except Exception as again:
            conn.disconnect()
            raise _as_redis_error(again) from again


def _xadd_send(conn: redis.connection.Connection, packed: bytes, count: int) -> None:
    """Write ``packed`` on ``conn`` (connecting it first if needed) and read ``count``
    replies. Any failure but an error reply leaves ``conn`` disconnected and raises."""
    try:
        if conn._sock is None:
            conn.connect()
        sock = conn._sock
        assert sock is not None
        sock.sendall(packed)
        _replies_read(sock, count)
    except redis.ResponseError:
        raise  # every reply was read: the connection is in step
    except (_Closed, ConnectionResetError, BrokenPipeError):
        raise
    except Exception as exc:
        conn.disconnect()
        raise _as_redis_error(exc) from exc


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


def _replies_read(sock: Any, count: int) -> None:
    """Read ``count`` XADD replies: each ``$<n>\\r\\n<id>\\r\\n``, or ``-<error>\\r\\n``
    (raised as ``redis.ResponseError`` after all are read, so the connection stays in step).
    A closed connection raises ``redis.ConnectionError``."""
    buffer = b""
    error = None
    while count:
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise _Closed("Redis closed the connection")
            buffer += chunk
            continue
        kind = buffer[:1]
        if kind == b"$":
            length = int(buffer[1:line_end])  # not a number: ValueError, a broken reply
            end = line_end + 2 if length < 0 else line_end + 2 + length + 2  # $-1: a nil reply
            if len(buffer) < end:
                chunk = sock.recv(65536)
                if not chunk:
                    raise _Closed("Redis closed the connection")
                buffer += chunk
                continue
            buffer = buffer[end:]
        elif kind == b"-":
            error = error or buffer[1:line_end].decode("utf-8", "replace")
            buffer = buffer[line_end + 2 :]
        else:
            raise redis.ConnectionError(f"unexpected reply to XADD: {buffer[:40]!r}")
        count -= 1
    if buffer:
        raise redis.ConnectionError(f"unexpected data after the XADD replies: {buffer[:40]!r}")
    if error is not None:
        raise redis.ResponseError(error)


_thread = threading.local()


def _thread_reset() -> None:
    """A forked child must not write on its parent's sockets."""
    global _thread
    _thread = threading.local()


os.register_at_fork(after_in_child=_thread_reset)


def _thread_connection(timeout: float) -> redis.connection.Connection:
    """This thread's connection to the event stream's Redis (one per URL and timeout)."""
    key = (settings.REDIS_URL, timeout)
    connections = getattr(_thread, "connections", None)
    if connections is None:
        connections = _thread.connections = {}
    conn = connections.get(key)
    if conn is None:
        client = redis.Redis.from_url(
            key[0], socket_connect_timeout=min(REDIS_CONNECT_TIMEOUT, timeout), socket_timeout=timeout
        )
        conn = connections[key] = client.connection_pool.make_connection()
    return conn
