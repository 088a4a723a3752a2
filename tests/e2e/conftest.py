"""End-to-end fixtures: a real Celery worker (with beat) as a subprocess, pointed at the
pytest TEST database, a private Redis database for its broker and event stream, and an
in-process aiosmtpd relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.e2e.helpers import WEBHOOK_BATCH_SIZE
from tests.transmissions.relay import Relay

ROOT = Path(__file__).resolve().parents[2]
# The e2e worker's broker and event stream live in one of these Redis dbs, claimed for the
# module (see _redis_claim): a worker of another test session sharing the db would take this
# session's tasks. 9 is tests/tracking's; 13 is the db older checkouts use unclaimed.
E2E_REDIS_DBS = (14, 15, 12, 11, 10)
E2E_REDIS_CLAIM = "engage:e2e:claimed-by"


def _redis_url(base: str, db: int) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _redis_claim(base: str, owner: str, timeout: float = 300.0) -> str:
    """The URL of a db of E2E_REDIS_DBS that no other session holds, claimed for ``owner``
    (a key with an expiry, in case the session dies); waits while all are held."""
    import redis

    deadline = time.monotonic() + timeout
    while True:
        for db in E2E_REDIS_DBS:
            url = _redis_url(base, db)
            if redis.Redis.from_url(url).set(E2E_REDIS_CLAIM, owner, nx=True, ex=3600):
                return url
        if time.monotonic() > deadline:
            raise RuntimeError(f"every e2e Redis db {E2E_REDIS_DBS} is claimed by another test session")
        time.sleep(1)


def _redis_release(url: str, owner: str) -> None:
    import redis

    release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
    redis.Redis.from_url(url).eval(release, 1, E2E_REDIS_CLAIM, owner)


def _database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    if host.startswith("/"):  # a socket directory (the embedded PostgreSQL)
        return f"postgresql://{auth}/{settings_dict['NAME']}?host={quote(host)}"
    return f"postgresql://{auth}{host}:{port}/{settings_dict['NAME']}"


class Worker:
    """``celery -A engage worker --beat -P prefork -c 2`` in its own process group."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.logdir / f"worker-{self.starts}.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "engage", "worker", "--beat", "-l", "INFO", "-P", "prefork",
             "-c", "2", "-Q", "celery,webhooks,housekeeping", "-s", str(self.logdir / "beat-schedule"), "-n", f"e2e-{uuid.uuid4().hex[:8]}@%h",
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self, after: float | None = None) -> None:
        """SIGKILL the whole worker (main process and pool children) at once.

        With ``after``: that many seconds from now, from another process, as an OOM kill or
        an operator would, at a moment independent of the relay. (A kill issued from this
        process is not: the in-process relay's thread shares its GIL, so the kill tends to
        land just after the relay kept a message.)"""
        if self.proc is None or self.proc.poll() is not None:
            assert after is None, "the worker is not running"
            return
        if after is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            subprocess.run(["/bin/sh", "-c", f"sleep {after:.3f}; kill -KILL -{self.proc.pid}"], check=True, timeout=30)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: the main process stops its children
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.logdir.glob("worker-*.log")))


def _broker_use(app, url: str) -> None:
    """Point this process's Celery producer at ``url`` (dropping cached connections)."""
    from kombu import pools

    # app._pool is kombu's process-wide pool for the URL; closing it alone would leave the
    # closed pool registered, and the next module's switch to the same URL would get it
    # back ("Acquire on closed pool"). reset() closes every pool and empties the registry.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url
    app.conf.broker_write_url = url
    app.conf.broker_read_url = url


@pytest.fixture(scope="module")
def e2e_relay():
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def e2e(django_db_setup, django_db_blocker, e2e_relay):
    """The worker, relay and settings shared by the module; yields a namespace."""
    from django.conf import settings
    from django.db import connection

    from engage.celery import app

    owner = uuid.uuid4().hex
    redis_url = _redis_claim(settings.REDIS_URL, owner)
    stream = f"engage:e2e:events:{uuid.uuid4().hex}"
    group = f"engage-e2e-{uuid.uuid4().hex[:8]}"
    logdir = Path(tempfile.mkdtemp(prefix="engage-e2e-"))
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": redis_url,
        "ENGAGE_RELAY_URL": e2e_relay.url,
        "ENGAGE_EVENT_STREAM": stream,
        "ENGAGE_EVENT_GROUP": group,
        "ENGAGE_TRACKING_BASE_URL": "http://testserver",
        "ENGAGE_TRACKING_KEYS": ",".join(settings.ENGAGE_TRACKING_KEYS),
        "ENGAGE_SECRET_KEY": settings.SECRET_KEY,
        "ENGAGE_SCHEDULER_INTERVAL": "1",
        "ENGAGE_SEND_CLAIM_TIMEOUT": "3",
        "ENGAGE_TASK_VISIBILITY_TIMEOUT": "6",
        "ENGAGE_RETRY_BASE_SECONDS": "1",
        "ENGAGE_GENERATION_CHUNK_SIZE": "100",
        "ENGAGE_SEND_BATCH_SIZE": "20",
        # Webhooks: beat makes a batch once its oldest event waited 1 s (and dispatches every
        # second); a failed POST is retried after 1 s, then 2 s, ...
        "ENGAGE_WEBHOOK_BATCH_SECONDS": "1",
        "ENGAGE_WEBHOOK_BATCH_SIZE": str(WEBHOOK_BATCH_SIZE),
        "ENGAGE_WEBHOOK_RETRY_BASE_SECONDS": "1",
        "ENGAGE_WEBHOOK_TIMEOUT": "5",
        # The webhook receivers listen on loopback, which targets may not reach unless allowed.
        "ENGAGE_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1/32",
        "ENGAGE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    # This process enqueues (POST → on_commit) and records clicks into the same broker and stream.
    saved = (app.conf.broker_url, settings.REDIS_URL, settings.ENGAGE_EVENT_STREAM, settings.ENGAGE_EVENT_GROUP,
             settings.ENGAGE_TRACKING_BASE_URL)  # fmt: skip
    _broker_use(app, redis_url)
    settings.REDIS_URL = redis_url
    settings.ENGAGE_EVENT_STREAM = stream
    settings.ENGAGE_EVENT_GROUP = group
    settings.ENGAGE_TRACKING_BASE_URL = "http://testserver"
    import redis

    broker = redis.Redis.from_url(redis_url)
    broker.delete("celery", "unacked", "unacked_index")
    worker = Worker(env, logdir)
    worker.start()
    try:
        yield type("E2E", (), {"worker": worker, "relay": e2e_relay, "stream": stream, "broker": broker})
    finally:
        worker.stop()
        # The module's last test emptied the tables before this module-scoped worker stopped,
        # and it may have written since (events of late sends, its landing): empty them again,
        # so no later test module finds this module's rows (seen in CI: a test's get() found
        # five bounces of the suppression end-to-end tests).
        from django.core.management import call_command

        from tests.helpers import UNFLUSHED_TABLES

        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(UNFLUSHED_TABLES)}")
        (app.conf.broker_url, settings.REDIS_URL, settings.ENGAGE_EVENT_STREAM, settings.ENGAGE_EVENT_GROUP,
         settings.ENGAGE_TRACKING_BASE_URL) = saved  # fmt: skip
        _broker_use(app, saved[0])
        broker.delete(stream)
        _redis_release(redis_url, owner)
        if sys.exc_info()[0] is not None:
            print(worker.log())


@pytest.fixture
def relay(e2e):
    """The module's relay, emptied and answering 250 at once."""
    e2e.relay.handler.received.clear()
    e2e.relay.handler.answers.clear()
    e2e.relay.handler.refuse.clear()
    e2e.relay.handler.refuse_mail = None
    e2e.relay.handler.delay = 0.0
    return e2e.relay
