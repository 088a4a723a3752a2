"""Click redirect benchmark: ``/f/<token>`` against a bare Django redirect, same server.

    .venv/bin/python bench/click_redirect.py [--seconds 10] [--connections 8] [--workers 2]

Uses DATABASE_URL / REDIS_URL like the app, but the database ``engage_bench_click`` (created and
migrated here) and a private event stream. Serves the app with gunicorn (gthread) on
127.0.0.1 with ENGAGE_BENCH_ROUTES=true, runs ``manage.py land_events`` alongside (as in
production), drives both URLs with ``wrk``, prints requests/s, the ratio (target >= 50%),
p99 latency (target <= 10 ms), then waits for the lander and checks that PostgreSQL holds
one click per redirect served. wrk counts the responses it read; requests still in flight
when it stops were served too, so events may exceed wrk's count by at most the number of
connections.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
# Not engage_bench itself: bench/metrics.py TRUNCATEs tracking_event there while it loads.
BENCH_DB = "engage_bench_click"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bench_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _create_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def _wait_http(port: int, path: str, timeout: float = 20) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def _wrk(url: str, seconds: int, connections: int, threads: int) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "count": count,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx_3xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (one per core)")
    parser.add_argument(
        "--lander-during", action="store_true", help="run the lander during the timed runs (default: start it after)"
    )
    parser.add_argument("--worker-threads", type=int, default=4, help="gunicorn gthread threads per worker")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    db_url = _bench_database_url()
    _create_database(db_url)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        # Its own Redis database: test suites FLUSHDB database 0, which would drop buffered events.
        "REDIS_URL": urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/10")),
        "ENGAGE_BENCH_ROUTES": "true",
        "ENGAGE_EVENT_STREAM": f"engage:bench:events:{uuid.uuid4().hex[:8]}",
        "ENGAGE_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "engage.settings",
    }
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from tracking.signing import tracking_signer

    transmission_id = str(int(time.time() * 1000))
    tokens = tracking_signer().for_message(
        message_id=uuid.uuid4().hex[:20],
        transmission_id=transmission_id,
        rcpt_to="bench@example.com",
        issued_at=int(time.time()),
        campaign_id="bench",
        template_id="tpl",
        template_version=1,
        rcpt_meta={"customer": "1234", "segment": "bench"},
        rcpt_tags=["bench"],
    )
    token = tokens.click("https://example.com/landing?utm_source=bench&x=%2F", "Bench link")
    # The warm-up clicks belong to another transmission, so the count of the timed run is exact.
    warm_token = (
        tracking_signer()
        .for_message(
            message_id=uuid.uuid4().hex[:20],
            transmission_id="1",
            rcpt_to="warm@example.com",
            issued_at=int(time.time()),
        )
        .click("https://example.com/warm", "Warm-up")
    )

    port = _free_port()
    server = subprocess.Popen(
        [GUNICORN, "engage.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "-k", "gthread",
         "--threads", str(args.worker_threads), "--limit-request-line", "8190", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    lander_cmd = [PY, "manage.py", "land_events"]
    lander = subprocess.Popen(lander_cmd, cwd=ROOT, env=env) if args.lander_during else None
    try:
        _wait_http(port, "/bench/redirect")
        base = f"http://127.0.0.1:{port}"
        warm = max(2, args.seconds // 5)
        _wrk(f"{base}/bench/redirect", warm, args.connections, args.threads)
        bare = _wrk(f"{base}/bench/redirect", args.seconds, args.connections, args.threads)
        # The warm-up of the tracked URL records clicks too: count them apart.
        _wrk(f"{base}/f/{warm_token}", warm, args.connections, args.threads)
        tracked = _wrk(f"{base}/f/{token}", args.seconds, args.connections, args.threads)
        if lander is None:
            lander = subprocess.Popen(lander_cmd, cwd=ROOT, env=env)
        # Wait until the lander has caught up: the stream is empty and the count settled.
        from tracking.events import events_redis

        deadline, last = time.monotonic() + 120, -1
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM tracking_event WHERE transmission_id = %s", [transmission_id])
                total = cursor.fetchone()[0]
            if events_redis().xlen(env["ENGAGE_EVENT_STREAM"]) == 0 and total == last:
                break
            last = total
        landed = last
    finally:
        server.terminate()
        server.wait(10)
        if lander is not None:
            lander.terminate()
            lander.wait(10)

    ratio = tracked["rps"] / bare["rps"]
    print(f"setup: gunicorn gthread {args.workers}x{args.worker_threads}, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds}s, {os.cpu_count()} CPUs, lander "
          f"{'running during the runs' if args.lander_during else 'started after the timed runs'}")  # fmt: skip
    print(f"bare Django redirect : {bare['rps']:10.0f} req/s  p50 {bare['p50_ms']:.2f} ms  p99 {bare['p99_ms']:.2f} ms")
    print(
        f"/f/<token> click     : {tracked['rps']:10.0f} req/s  p50 {tracked['p50_ms']:.2f} ms  "
        f"p99 {tracked['p99_ms']:.2f} ms"
    )
    print(f"ratio click/bare     : {ratio:.0%} (target >= 50%)  -> {'OK' if ratio >= 0.5 else 'MISSED'}")
    print(f"click p99            : {tracked['p99_ms']:.2f} ms (target <= 10 ms) -> "
          f"{'OK' if tracked['p99_ms'] <= 10 else 'MISSED'}")  # fmt: skip
    print(f"errors               : non-2xx/3xx {tracked['non_2xx_3xx']}, socket {tracked['socket_errors'] or 'none'}")
    extra = landed - tracked["count"]
    ok = 0 <= extra <= args.connections
    print(f"redirects (wrk count): {tracked['count']}; click events landed: {landed} (+{extra} in flight at wrk stop,"
          f" allowed <= {args.connections}) -> {'OK' if ok else 'MISMATCH'}")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
