"""Click redirect benchmark: ``/f/<token>`` against a bare Django redirect, same server.

    .venv/bin/python bench/click_redirect.py [--seconds 10] [--connections 8] [--workers 2] [--rounds 3]

Uses DATABASE_URL / REDIS_URL like the app, but the database ``engage_bench_click`` (created and
migrated here) and a private event stream. Serves the app with gunicorn (gthread) on
127.0.0.1 with ENGAGE_BENCH_ROUTES=true, runs ``manage.py land_events`` alongside (as in
production), drives both URLs with ``wrk``, prints requests/s, the ratio (target >= 50%),
p99 latency (target <= 10 ms), then waits for the lander and checks that PostgreSQL holds
one click per redirect served. wrk counts the responses it read; requests still in flight
when it stops were served too, so events may exceed wrk's count by at most the number of
connections per run.

The two URLs alternate for ``--rounds`` rounds and the targets are judged on the medians.
Each run prints how wrk's keep-alive connections were split over the gunicorn workers
(``ss``): gunicorn lets its workers race for accept(), and a run whose connections all
landed on one worker measures one core, whichever URL it drives.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
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


def _split(port: int) -> str:
    """How the open client connections are spread over the gunicorn worker processes."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    per_pid = Counter(re.findall(r"pid=(\d+)", out))
    return "/".join(str(n) for n in sorted(per_pid.values(), reverse=True)) or "?"


def _wrk(url: str, seconds: int, connections: int, threads: int, port: int | None = None) -> dict:
    proc = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        stdout=subprocess.PIPE,
        text=True,
    )
    split = ""
    if port is not None and shutil.which("ss"):
        time.sleep(min(1.0, seconds / 2))
        split = _split(port)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"wrk failed ({proc.returncode})")
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
        "split": split,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="bare and click runs alternate; medians are judged")
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
        # The warm-up of the tracked URL records clicks too: count them apart.
        _wrk(f"{base}/f/{warm_token}", warm, args.connections, args.threads)
        rounds = []  # (bare, click): alternated, so a load change on the machine falls on both
        for _ in range(args.rounds):
            bare = _wrk(f"{base}/bench/redirect", args.seconds, args.connections, args.threads, port)
            rounds.append((bare, _wrk(f"{base}/f/{token}", args.seconds, args.connections, args.threads, port)))
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

    print(f"setup: gunicorn gthread {args.workers}x{args.worker_threads}, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds}s, {args.rounds} rounds, {os.cpu_count()} CPUs, lander "
          f"{'running during the runs' if args.lander_during else 'started after the timed runs'}")  # fmt: skip
    for n, (bare, tracked) in enumerate(rounds, 1):
        print(f"round {n}: bare {bare['rps']:6.0f} req/s p50 {bare['p50_ms']:.2f} ms p99 {bare['p99_ms']:5.2f} ms "
              f"[split {bare['split']}] | click {tracked['rps']:6.0f} req/s p50 {tracked['p50_ms']:.2f} ms "
              f"p99 {tracked['p99_ms']:5.2f} ms [split {tracked['split']}] | ratio {tracked['rps'] / bare['rps']:.0%}")  # fmt: skip
    bare_rps, click_rps = (statistics.median(r[i]["rps"] for r in rounds) for i in (0, 1))
    bare_p99, click_p99 = (statistics.median(r[i]["p99_ms"] for r in rounds) for i in (0, 1))
    ratio = statistics.median(r[1]["rps"] / r[0]["rps"] for r in rounds)
    print(f"median bare redirect : {bare_rps:10.0f} req/s  p99 {bare_p99:.2f} ms")
    print(f"median /f/<token>    : {click_rps:10.0f} req/s  p99 {click_p99:.2f} ms")
    print(f"ratio click/bare     : {ratio:.0%} (median of the rounds' ratios; target >= 50%)  -> "
          f"{'OK' if ratio >= 0.5 else 'MISSED'}")  # fmt: skip
    print(f"click p99            : {click_p99:.2f} ms (median; target <= 10 ms) -> {'OK' if click_p99 <= 10 else 'MISSED'}")
    errors = sum(r[1]["non_2xx_3xx"] for r in rounds)
    socket_errors = "; ".join(r[1]["socket_errors"] for r in rounds if r[1]["socket_errors"]) or "none"
    print(f"errors               : non-2xx/3xx {errors}, socket {socket_errors}")
    served = sum(r[1]["count"] for r in rounds)
    extra = landed - served
    allowed = args.connections * args.rounds
    ok = 0 <= extra <= allowed and errors == 0
    print(f"redirects (wrk count): {served}; click events landed: {landed} (+{extra} in flight at wrk stops,"
          f" allowed <= {allowed}) -> {'OK' if ok else 'MISMATCH'}")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
