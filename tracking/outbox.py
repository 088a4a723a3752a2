"""Events that must not be lost when Redis is not there: the outbox and the spool.

The event buffer (``tracking.events``) is a Redis stream, fast enough for the click
redirect. Two kinds of event cannot depend on it alone (issue 11, "every event lands"):

* **Send-side events** (``injection``, ``delivery``, ``bounce``, ``delay``,
  ``generation_failure``) describe a change of a message's state. They are written to
  ``tracking_event_outbox`` by the same SQL statement (or transaction) that changes the
  state (``OUTBOX_INSERT``), so a worker killed at any point leaves either both or neither,
  and a Redis restart cannot touch them.
* **A tracking hit's events** go to Redis first; when Redis does not take them
  (:func:`events_record`) they are inserted into the outbox on this process's database
  connection, and when PostgreSQL does not take them either, appended to a local spool
  file (``ENGAGE_EVENT_SPOOL_DIR``, fsync'd before the hit is answered) that is replayed
  into Redis as soon as it answers again (:func:`spool_replay`, run by every lander, and by
  a background thread of this process that no hit waits on: :func:`spool_replay_soon`).
  The redirect or pixel is served in every case.

Every event is stamped (``event_id``, ``timestamp``) once, before its first write, so an
event written twice (a pipeline that failed half way, then the outbox) lands once: the
event table's unique ``(event_id, timestamp)`` drops the second.

``analytics.landing.outbox_land`` moves outbox rows into ``tracking_event``: ``DELETE ... RETURNING``
and the insert (with rollups and webhook feeds) in one transaction, so each row lands
exactly once whichever lander takes it and whenever one dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from tracking.events import events_json, events_stamp, events_xadd

log = logging.getLogger(__name__)

__all__ = [
    "OUTBOX_INSERT",
    "OUTBOX_INSERT_EACH",
    "events_record",
    "outbox_json",
    "outbox_payloads_write",
    "outbox_write",
    "spool_replay",
    "spool_replay_soon",
]

#: Appends one outbox row from a CTE named ``changed`` when that CTE returned a row: put
#: it after ``WITH changed AS (UPDATE ... RETURNING id)`` so the events are written only
#: when (and in the statement where) the state changed. Its one parameter is the JSON
#: array of stamped events (:func:`outbox_json`).
OUTBOX_INSERT = "INSERT INTO tracking_event_outbox (payload) SELECT {param}::jsonb FROM changed"
#: :data:`OUTBOX_INSERT` for a ``changed`` CTE of several rows, each with events of its own:
#: one outbox row per changed row, its payload the ``{payload}`` column (a JSON array of
#: stamped events, :func:`outbox_json`, as text) of the row of ``{source}`` with the same ``id``.
OUTBOX_INSERT_EACH = (
    "INSERT INTO tracking_event_outbox (payload) SELECT {payload}::jsonb FROM changed JOIN {source} USING (id)"
)
_OUTBOX_APPEND = "INSERT INTO tracking_event_outbox (payload) VALUES (%s::jsonb)"


#: Seconds a tracking hit waits for Redis (a healthy one answers an XADD in well under a
#: millisecond); past it the hit's events go to PostgreSQL.
HIT_REDIS_TIMEOUT = 0.25
#: Seconds hits skip Redis after it failed one (then one hit tries it again).
REDIS_PAUSE = 1.0
_redis_pause = {"until": 0.0}
#: Seconds between two looks at the spool directory by a process that has not written to it.
SPOOL_LOOK_EVERY = 1.0
#: Events per XADD when a spool file is replayed (a 100,000-event file is not packed at once).
SPOOL_REPLAY_BATCH = 1000
_SPOOL_SUFFIX = ".jsonl"
_spool = {"next_look": 0.0}
_spool_replayer: dict[str, threading.Thread | None] = {"thread": None}
_spool_replayer_lock = threading.Lock()


def _spool_replayer_reset() -> None:
    """A forked child starts with no replay thread (its parent's does not run in it)."""
    global _spool_replayer_lock
    _spool_replayer["thread"] = None
    _spool_replayer_lock = threading.Lock()


os.register_at_fork(after_in_child=_spool_replayer_reset)


def outbox_json(events: Sequence[dict[str, Any]]) -> str:
    """``events`` stamped (:func:`tracking.events.events_stamp`) as one JSON array: the
    parameter of :data:`OUTBOX_INSERT`."""
    return _array(events_json(events_stamp(events)))


def outbox_write(cursor: Any, events: Sequence[dict[str, Any]]) -> None:
    """Append ``events`` to the outbox on ``cursor`` (in the caller's transaction)."""
    if events:
        cursor.execute(_OUTBOX_APPEND, [outbox_json(events)])


def outbox_payloads_write(payloads: list[bytes]) -> None:
    """Append stamped, JSON-encoded events (:func:`tracking.events.events_json`) as one outbox
    row, committed on this thread's connection. ``DatabaseError`` when PostgreSQL does not
    take them."""
    with connection.cursor() as cursor:
        cursor.execute(_OUTBOX_APPEND, [_array(payloads)])


def events_record(events: Sequence[dict[str, Any]]) -> str:
    """Record ``events`` so that none is lost while this process lives past the call:
    Redis if it takes them within :data:`HIT_REDIS_TIMEOUT`, else the outbox in PostgreSQL,
    else the local spool. Returns where they went (``"redis"``, ``"outbox"``, ``"spool"``,
    or ``"lost"`` when even the spool could not be written: logged, never raised, so the
    hit is still answered). After Redis failed, hits skip it for :data:`REDIS_PAUSE`
    seconds, so an outage costs each hit one PostgreSQL insert, not a Redis timeout."""
    if not events:
        return "redis"
    stamped = events_stamp(events)
    payloads = events_json(stamped)
    if time.monotonic() >= _redis_pause["until"]:
        try:
            events_xadd(payloads, timeout=HIT_REDIS_TIMEOUT)
        except redis.RedisError as exc:
            _redis_pause["until"] = time.monotonic() + REDIS_PAUSE
            log.warning("Redis did not take %d event(s) (%s): writing hits to PostgreSQL", len(stamped), exc)
        else:
            if time.monotonic() >= _spool["next_look"]:
                spool_replay_soon()
            return "redis"
    try:
        with connection.cursor() as cursor:
            cursor.execute(_OUTBOX_APPEND, [_array(payloads)])
        return "outbox"
    except DatabaseError as exc:
        log.error("PostgreSQL did not take %d event(s) either (%s): spooling them to disk", len(stamped), exc)
        _connection_reset()
    try:
        _spool_write(payloads)
    except OSError as exc:
        log.critical("%d event(s) LOST: Redis, PostgreSQL and the spool %s all failed (%s): %s",
                     len(stamped), _spool_dir(), exc, _array(payloads)[:2000])  # fmt: skip
        return "lost"
    return "spool"


def _array(payloads: list[bytes]) -> str:
    return "[" + b",".join(payloads).decode() + "]"


def _connection_reset() -> None:
    """Drop a broken connection so the next request opens a new one."""
    try:
        connection.close()
    except DatabaseError:
        pass


def _spool_dir() -> Path:
    return Path(settings.ENGAGE_EVENT_SPOOL_DIR)


def _spool_write(payloads: list[bytes]) -> None:
    """Append the events to this process's spool file and fsync it (one line per event)."""
    directory = _spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{os.getpid()}{_SPOOL_SUFFIX}"
    data = b"".join(payload + b"\n" for payload in payloads)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # replayed and unlinked while we waited: a new file
                continue
            os.write(fd, data)
            os.fsync(fd)
            break
        finally:
            os.close(fd)
    _spool["next_look"] = 0.0  # replay as soon as Redis answers again


def spool_replay_soon() -> threading.Thread | None:
    """Start :func:`spool_replay` on a background thread of this process, unless one is
    running; returns the thread started (None if one was running). A hit that finds the spool
    due for a look calls this (at most once per :data:`SPOOL_LOOK_EVERY` per process: a thread
    start) and is answered at once: replaying 100,000 spooled events inline made the hit that
    triggered it take 1.8 s on a quiet machine, 6.0-7.1 s at load 9, against 1-11 ms with the
    replay on its own thread (bench/RESULTS.md, session 13). The thread is a daemon: a process that exits mid-replay leaves the files (removed only once Redis took
    them all) to the next replay, which may write some events twice, to land once."""
    _spool["next_look"] = time.monotonic() + SPOOL_LOOK_EVERY  # no other hit starts one meanwhile
    with _spool_replayer_lock:
        running = _spool_replayer["thread"]
        if running is not None and running.is_alive():
            return None
        thread = threading.Thread(target=_spool_replay_background, name="engage-spool-replay", daemon=True)
        _spool_replayer["thread"] = thread
    thread.start()
    return thread


def _spool_replay_background() -> None:
    try:
        spool_replay()
    except Exception:  # a thread's exception would go to stderr only; the files stay
        _spool["next_look"] = 0.0
        log.exception("replaying the event spool failed; the next hit tries again")


def spool_replay() -> int:
    """Move every spooled event into Redis (:data:`SPOOL_REPLAY_BATCH` per XADD); returns
    how many. A file another process is replaying (or writing) is skipped; a file is removed
    only after Redis took all its events (a failure half way leaves it whole: the events
    already taken are written again on the next call, and land once by their ids). Lines cut
    short by a crash, and lines that are not an event (a JSON object with a ``type``), are
    dropped with one log line per file. Never raises: a Redis outage leaves the files for the
    next call, and an entry that cannot be replayed (a directory, a FIFO, a symlink, a device,
    a file it may not open or remove) is skipped with a log line (at most one per entry per
    :data:`SPOOL_ODD_LOG_EVERY` seconds) while every other file is replayed: one odd entry
    once stopped every lander (an attacker's review, tests/tracking/test_spool_hostile.py)."""
    _spool["next_look"] = time.monotonic() + SPOOL_LOOK_EVERY
    directory = _spool_dir()
    try:
        paths = sorted(directory.glob(f"*{_SPOOL_SUFFIX}"))
    except OSError:
        return 0
    _stale_temporaries_remove(directory)
    moved = 0
    for path in paths:
        try:
            replayed = _spool_file_replay(path)
        except redis.RedisError:
            _spool["next_look"] = 0.0
            return moved
        except OSError as exc:
            _spool_odd(path, f"{type(exc).__name__}: {exc.strerror or exc}")
            continue
        moved += replayed
    return moved


#: Seconds between two log lines about the same spool entry that cannot be replayed.
SPOOL_ODD_LOG_EVERY = 60.0
#: The longest spool line replayed (bytes): an event is far smaller; a longer line is dropped.
SPOOL_LINE_MAX = 4 << 20
#: Seconds after which a writer's temporary file (``.hits-*.new``, made and renamed at once by
#: ``tracking.hitlog``) is taken for one left by a process that died in between, and removed.
SPOOL_TEMPORARY_MAX_AGE = 60.0
_spool_odd_logged: dict[str, float] = {}


def _spool_odd(path: Path, why: str) -> None:
    now = time.monotonic()
    if now - _spool_odd_logged.get(str(path), float("-inf")) >= SPOOL_ODD_LOG_EVERY:
        _spool_odd_logged[str(path)] = now
        log.error("skipping spool entry %s: %s (remove or fix it; the other files are replayed)", path, why)


def _stale_temporaries_remove(directory: Path) -> None:
    try:
        for entry in os.scandir(directory):
            temporary = entry.name.startswith(".hits-") and entry.name.endswith(".new")
            if (temporary and entry.is_file(follow_symlinks=False)
                    and time.time() - entry.stat(follow_symlinks=False).st_mtime > SPOOL_TEMPORARY_MAX_AGE):  # fmt: skip
                os.unlink(entry.path)
    except OSError:
        pass


def _spool_file_replay(path: Path) -> int:
    """Replay one spool file (:func:`spool_replay`); returns its events moved. OSError for an
    entry that is not a regular file this process may read and remove; RedisError when Redis
    did not take them (the file stays whole)."""
    try:
        # No symlink is followed, and opening a FIFO does not wait for a writer.
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return 0  # another process writes or replays it
            raise
        if os.fstat(fd).st_nlink == 0:
            return 0
        payloads: list[bytes] = []
        dropped: list[bytes] = []
        moved = 0
        with os.fdopen(os.dup(fd), "rb") as handle:
            while line := handle.readline(SPOOL_LINE_MAX + 1):
                if not line.endswith(b"\n"):  # cut short by a crash, or over-long: skip to its end
                    dropped.append(line[:80])
                    while (rest := handle.readline(SPOOL_LINE_MAX + 1)) and not rest.endswith(b"\n"):
                        pass
                    continue
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                if len(line) > SPOOL_LINE_MAX or not _is_event(line):
                    dropped.append(line[:80])
                    continue
                payloads.append(line)
                if len(payloads) >= SPOOL_REPLAY_BATCH:
                    events_xadd(payloads)
                    moved, payloads = moved + len(payloads), []
        if payloads:
            events_xadd(payloads)
            moved += len(payloads)
        os.unlink(path)
        if dropped:
            log.error("dropped %d spool line(s) of %s that were not whole events (first: %r)", len(dropped), path,
                      dropped[0])  # fmt: skip
        if moved:
            log.warning("replayed %d spooled event(s) from %s into Redis", moved, path)
        return moved
    finally:
        os.close(fd)


def _is_event(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and isinstance(event.get("type"), str) and bool(event["type"])
