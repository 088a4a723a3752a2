"""The hit log: a tracking hit's events written to a local file before the hit is answered,
and moved into the Redis stream by a background thread of the same process.

Why (issue 11, "click >= 80 % of the bare redirect"): with one Redis round trip per hit, the
click cost the tracking process a socket write, a wait on Redis and a thread switch, and Redis
~46 µs of CPU per XADD on the same cores; the click bench stayed at 74 % of the bare redirect
(bench/RESULTS.md, session 13). Here a hit costs one ``write()`` under a thread lock
(2-4 µs), and the XADDs of every hit of the last :data:`SHIP_EVERY` seconds go to Redis in one
pipelined round trip.

Durability, as issue 11 asks ("no acknowledged hit is lost when a process dies or a service
restarts"): the hit is answered once its events are in the kernel's page cache. A process
that dies (SIGKILL included) leaves its file whole; a file outlives its process and any
process of the host that replays the spool directory (every lander, every tracking process's
shipper: :func:`tracking.outbox.spool_replay`) takes it over once its owner's lock is gone.
What the kernel holds is lost only with the host itself, as what Redis took in its last
second is with ``appendfsync everysec``; the shipper hands events on within
:data:`SHIP_EVERY` seconds.

The files live in ``ENGAGE_EVENT_SPOOL_DIR``, named ``hits-<pid>-<n>.jsonl`` (one stamped
event per line, :func:`tracking.events.events_json`), and the writer holds an exclusive
``flock`` on its file from before its name appears until it is shipped, so a replay elsewhere
never takes a file still being written. Shipping: the thread takes the file out of use (the
next hit opens a new one), XADDs its events (:data:`tracking.outbox.SPOOL_REPLAY_BATCH` per
round trip), or when Redis does not take them writes them to PostgreSQL's outbox, then
removes the file. When both fail the file is fsync'd and unlocked and stays for the next
replay. Every event was stamped once, so one shipped twice (a process that died between the
XADD and the unlink) lands once.

When the file cannot be written (disk full, read-only, no directory), the hit falls back to
:func:`tracking.outbox.events_record` (Redis, else the outbox, else the fsync'd spool) and
the failure is logged. ``ENGAGE_EVENT_HIT_LOG=false`` uses that path for every hit.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from tracking.events import events_json, events_stamp, events_xadd
from tracking.outbox import (
    SPOOL_LOOK_EVERY,
    SPOOL_REPLAY_BATCH,
    events_record,
    outbox_payloads_write,
    spool_replay,
)

log = logging.getLogger(__name__)

__all__ = ["SHIP_EVERY", "hits_flush", "hits_record"]

#: Seconds the shipper waits after a hit before it ships (the hits of that window go in one
#: round trip); also how long a hit's events stay in the file at most while Redis answers.
SHIP_EVERY = 0.02
#: Seconds between two attempts of a shipper whose batch neither Redis nor PostgreSQL took.
SHIP_RETRY = 1.0
#: Seconds hits go straight to :func:`tracking.outbox.events_record` after a write to the hit
#: log failed (a full disk: one empty file and five syscalls per hit otherwise).
WRITE_RETRY = 1.0
#: Seconds between two log lines about a hit log that cannot be written (one per hit would
#: flood the log at the click rate).
FAILURE_LOG_EVERY = 60.0
_PREFIX = "hits-"
_SUFFIX = ".jsonl"  # tracking.outbox's spool suffix: a dead process's file is replayed as spool


@dataclass
class _Log:
    """This process's hit log: the open file and the shipper thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ship_lock: threading.Lock = field(default_factory=threading.Lock)  # one ship at a time
    wake: threading.Event = field(default_factory=threading.Event)
    fd: int | None = None
    path: Path | None = None
    directory: str = ""
    lines: int = 0  # events in the open file
    shipper: threading.Thread | None = None
    names: itertools.count = field(default_factory=itertools.count)
    failure_logged: float = float("-inf")  # monotonic time a failed write was last logged
    retry_at: float = 0.0  # after a failed write, hits skip the file until this monotonic time


_log = _Log()


def _after_fork_in_child() -> None:
    """A forked child writes its own file: it closes its copy of the parent's descriptor (the
    parent's lock stays the parent's) and starts with no shipper."""
    global _log
    if _log.fd is not None:
        try:
            os.close(_log.fd)
        except OSError:
            pass
    _log = _Log()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _ship_at_exit() -> None:
    """A process that ends through Python's own exit ships what it holds. granian's workers
    end without it (an attacker's review saw their files left after a SIGTERM): their files,
    like a killed process's, are replayed by the landers and the other tracking processes."""
    try:
        hits_flush()
    except Exception:  # at exit nothing may raise; the file stays for the next replay
        log.exception("shipping the hit log at exit failed; its file stays for a replay")


def hits_record(events: Sequence[dict[str, Any]]) -> str:
    """Record a tracking hit's ``events`` so that none is lost once this returns (module
    docstring): stamped (``event_id``, ``timestamp``) and appended to this process's hit log,
    shipped to Redis within :data:`SHIP_EVERY` seconds. Returns ``"hitlog"``, or what
    :func:`tracking.outbox.events_record` returns when the hit log is off or its file could
    not be written. Never raises for a store that is down."""
    if not events:
        return "hitlog"
    if not settings.ENGAGE_EVENT_HIT_LOG or time.monotonic() < _log.retry_at:
        return events_record(events)
    stamped = events_stamp(events)
    data = b"".join(payload + b"\n" for payload in events_json(stamped))
    state = _log
    try:
        with state.lock:
            if state.fd is None or state.directory != settings.ENGAGE_EVENT_SPOOL_DIR:
                _file_open(state)
            assert state.fd is not None
            written = os.write(state.fd, data)
            if written != len(data):  # a full disk: the cut line is dropped by the replay
                raise OSError(f"short write to the hit log ({written} of {len(data)} bytes)")
            state.lines += len(stamped)
            first = state.lines == len(stamped)
            state.failure_logged = float("-inf")
    except OSError as exc:
        with state.lock:
            state.retry_at = time.monotonic() + WRITE_RETRY
            if time.monotonic() - state.failure_logged >= FAILURE_LOG_EVERY:
                state.failure_logged = time.monotonic()
                log.error("the hit log in %s cannot be written (%s): hits go to Redis directly", _directory(), exc)
            _file_drop(state, remove_if_empty=True)
        return events_record(stamped)
    if first:
        _shipper_wake(state)
    return "hitlog"


def hits_flush() -> int:
    """Ship what this process's hit log holds now, on the calling thread; returns how many
    events went out (0 when there was nothing, -1 when they stay on disk because neither
    Redis nor PostgreSQL took them or the file could not be read). Never raises."""
    try:
        return _ship(_log)
    except OSError as exc:
        log.error("shipping the hit log failed (%s): its file stays for a replay", exc)
        return -1


def _directory() -> Path:
    return Path(settings.ENGAGE_EVENT_SPOOL_DIR)


def _file_open(state: _Log) -> None:
    """A new file for the hit log, locked before its ``.jsonl`` name appears (a replay
    elsewhere skips a locked file and never sees it unlocked while it is in use)."""
    _file_drop(state)
    directory = _directory()
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{_PREFIX}{os.getpid()}-{time.time_ns()}-{next(state.names)}"
    temporary = directory / f".{stem}.new"
    fd = os.open(temporary, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = directory / f"{stem}{_SUFFIX}"
        os.rename(temporary, path)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    state.fd, state.path, state.directory, state.lines = fd, path, str(settings.ENGAGE_EVENT_SPOOL_DIR), 0


def _file_drop(state: _Log, *, remove_if_empty: bool = False) -> None:
    """Forget the open file (called under ``state.lock``): its events stay for a replay; with
    ``remove_if_empty``, a file that holds nothing is removed."""
    if state.fd is not None:
        with contextlib.suppress(OSError):
            if remove_if_empty and state.path is not None and os.fstat(state.fd).st_size == 0:
                os.unlink(state.path)
        with contextlib.suppress(OSError):
            os.close(state.fd)
    state.fd, state.path, state.lines = None, None, 0


def _shipper_wake(state: _Log) -> None:
    thread = state.shipper
    if thread is None or not thread.is_alive():
        with state.lock:
            thread = state.shipper
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=_shipper_run, args=(state,), name="engage-hit-shipper", daemon=True)
                state.shipper = thread
                thread.start()
    state.wake.set()


def _shipper_run(state: _Log) -> None:
    """The shipper thread: after a hit, wait :data:`SHIP_EVERY` and ship; every
    :data:`tracking.outbox.SPOOL_LOOK_EVERY` seconds, replay what dead processes left."""
    next_look = 0.0
    while _log is state:  # a forked child's copy of this thread does not exist; a new state, a new thread
        woken = state.wake.wait(SPOOL_LOOK_EVERY)
        if woken:
            time.sleep(SHIP_EVERY)
            state.wake.clear()
        try:
            if _ship(state) < 0:
                time.sleep(SHIP_RETRY)
                state.wake.set()
            if _log is state and settings.ENGAGE_EVENT_HIT_LOG and time.monotonic() >= next_look:
                next_look = time.monotonic() + SPOOL_LOOK_EVERY
                spool_replay()
        except Exception:  # the thread must live on: the file stays for the next round
            log.exception("shipping the hit log failed; trying again")
            time.sleep(SHIP_RETRY)
        finally:
            connection.close()  # this thread's own connection, if the outbox was used


def _ship(state: _Log) -> int:
    """Take the open file out of use and move its events to Redis (else the outbox). Returns
    how many went out, or -1 when neither store took them (the file stays, fsync'd)."""
    with state.ship_lock:
        with state.lock:
            if state.fd is None or not state.lines:
                return 0
            fd, path = state.fd, state.path
            state.fd, state.path, state.lines = None, None, 0  # the next hit opens a new file
        assert path is not None
        try:
            payloads = _lines_read(fd)
            try:
                for start in range(0, len(payloads), SPOOL_REPLAY_BATCH):
                    events_xadd(payloads[start : start + SPOOL_REPLAY_BATCH])
            except redis.RedisError as exc:
                log.warning("Redis did not take %d hit event(s) (%s): writing them to PostgreSQL", len(payloads), exc)
                try:
                    outbox_payloads_write(payloads)
                except DatabaseError as db_exc:
                    log.error("PostgreSQL did not take them either (%s): they stay in %s", db_exc, path)
                    connection.close()
                    os.fsync(fd)
                    return -1
            os.unlink(path)
            return len(payloads)
        finally:
            os.close(fd)  # releases the lock: a file left behind is anyone's to replay


def _lines_read(fd: int) -> list[bytes]:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    data = b"".join(chunks)
    if data and not data.endswith(b"\n"):  # a short write's cut line (the file was dropped after it)
        log.error("dropping a cut hit log line: %r", data[data.rfind(b"\n") + 1 :][:200])
        data = data[: data.rfind(b"\n") + 1]
    return [line for line in data.split(b"\n") if line]
