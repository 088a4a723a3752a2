"""Click redirect benchmark: ``/f/<token>`` against a bare Django redirect, both served by the
tracking process as deployed.

    .venv/bin/python bench/click_redirect.py [--seconds 10] [--connections 8] [--rounds 3]
                                             [--workers 2] [--server procfile|NAME,...|all]

``--server procfile`` (the default) runs the ``track`` line of ``scripts/Procfile`` exactly as
``scripts/run`` does (through ``/bin/sh -c``, ``ENGAGE_TRACK_PORT`` and ``ENGAGE_WEB_WORKERS``
set; the line itself sets ``ENGAGE_SERVE=tracking``), so the light tracking middleware and the
tracking URL-conf serve both URLs: ``ENGAGE_BENCH_ROUTES=true`` adds ``/bench/redirect`` to
``tracking/urls.py``, which the tracking URL-conf includes. ``--server`` also takes names of
:data:`CANDIDATES` (comma-separated, or ``all``) to compare WSGI servers: every server named
is started at once on its own port, and each round drives every server's bare redirect and
click, the order rotating, so a load change on the shared machine falls on all of them.

Uses DATABASE_URL / REDIS_URL like the app, but the database ``engage_bench_click`` (created and
migrated here), Redis database 10 and a private event stream. Each server's clicks carry a
transmission of their own; after the timed runs ``manage.py land_events`` lands them (as in
production) and PostgreSQL must hold one click per redirect served. wrk counts the responses
it read; requests still in flight when it stops were served too, so events may exceed wrk's
count by at most the number of connections per run. Targets (issue 11), judged on the medians
of the alternating rounds: click >= 80 % of the bare redirect, click p99 <= 10 ms at 8
connections, events = redirects.

``--consent N`` (issue 14) adds a third run per round: the same click with N addresses in the
tracking consent register (a third of them denied, a third with two records of history, the
clicked recipient granted), loaded before that run and emptied before the others. Target: the
click with consent data keeps >= 95 % of its rate without (median of the rounds' ratios), and
its events still all land (the lander consults the register).

Each run prints how wrk's keep-alive connections were split over the server's worker
processes (``ss``): workers that race for accept() can leave every connection on one worker,
and such a run measures one core, whichever URL it drives.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python")
# Not engage_bench itself: bench/metrics.py TRUNCATEs tracking_event there while it loads.
BENCH_DB = "engage_bench_click"
TARGET_RATIO, TARGET_P99_MS = 0.80, 10.0
TARGET_CONSENT_RATIO = 0.95

# bjoern has no command line: one listening socket, then a fork per worker, each serving it.
_BJOERN = """
import os, sys, bjoern
from engage.wsgi import application
bjoern.listen(application, "127.0.0.1", int(sys.argv[1]))
children = []
for _ in range(int(sys.argv[2])):
    pid = os.fork()
    if pid == 0:
        bjoern.run()
        os._exit(0)
    children.append(pid)
for c in children:  # the bench's SIGTERM goes to the whole process group
    os.waitpid(c, 0)
"""


def _gunicorn(worker_class: str, *extra: str):
    return lambda port, workers: [
        str(BIN / "gunicorn"), "engage.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", worker_class, "--limit-request-line", "8190", *extra,
    ]  # fmt: skip


def _granian(threads: int, *extra: str):
    return lambda port, workers: [
        str(BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws", "--http", "1", *extra,
        "engage.wsgi:application",
    ]  # fmt: skip


# The servers --server can compare (installed into .venv by hand to measure; only the one
# scripts/Procfile uses is pinned in requirements.txt). Each gets {workers} processes on
# 127.0.0.1:{port}, ENGAGE_SERVE=tracking from the environment and no access log.
CANDIDATES = {
    "gunicorn-gthread": _gunicorn("gthread", "--threads", "4"),
    "gunicorn-gthread1": _gunicorn("gthread", "--threads", "1"),
    "gunicorn-sync": _gunicorn("sync"),
    "granian": _granian(1),
    "granian-t2": _granian(2),
    "granian-t4": _granian(4),
    "granian-t8": _granian(8),
    "uwsgi": lambda port, workers: [
        str(BIN / "uwsgi"),
        "--http-socket",
        f"127.0.0.1:{port}",
        "--http-keepalive",
        "--module",
        "engage.wsgi:application",
        "--master",
        "--processes",
        str(workers),
        "--disable-logging",
        "--die-on-term",
        "--need-app",
        "--buffer-size",
        "8192",
    ],  # fmt: skip
    "waitress": lambda port, workers: [
        str(BIN / "waitress-serve"),
        "--listen",
        f"127.0.0.1:{port}",
        "--threads",
        "4",
        "engage.wsgi:application",
    ],
    "bjoern": lambda port, workers: [PY, "-c", _BJOERN, str(port), str(workers)],
    "uvicorn": lambda port, workers: [
        str(BIN / "uvicorn"),
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "engage.wsgi:application",
    ],  # fmt: skip
}


def procfile_command(name: str = "track") -> str:
    """The command of ``name`` in scripts/Procfile, as honcho hands it to ``/bin/sh -c``."""
    for line in (ROOT / "scripts" / "Procfile").read_text().splitlines():
        process, sep, command = line.partition(":")
        if sep and process.strip() == name and not line.startswith("#"):
            return command.strip()
    raise SystemExit(f"scripts/Procfile has no {name!r} line")


def _server_command(name: str, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    """The argv of server ``name`` and the variables it needs on top of the bench's."""
    if name == "procfile":
        env = {"ENGAGE_TRACK_PORT": str(port), "ENGAGE_WEB_WORKERS": str(workers)}
        return ["/bin/sh", "-c", procfile_command()], env
    return CANDIDATES[name](port, workers), {"ENGAGE_SERVE": "tracking"}


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


def _get(port: int, path: str) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_http(name: str, process: subprocess.Popen, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}) before serving")
        try:
            status, _ = _get(port, "/bench/redirect")
        except OSError:
            time.sleep(0.2)
            continue
        if status != 302:
            raise SystemExit(f"{name}: /bench/redirect answered {status}; is ENGAGE_BENCH_ROUTES routed?")
        # The tracking URL-conf answers any other path with its plain 404.
        if _get(port, "/admin/") != (404, b"Not Found\n"):
            raise SystemExit(f"{name} does not serve the tracking routes alone (ENGAGE_SERVE=tracking?)")
        return
    raise SystemExit(f"{name} did not come up on port {port}")


def _split(port: int) -> str:
    """How the open client connections are spread over the server's worker processes."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    per_pid = Counter(re.findall(r"pid=(\d+)", out))
    return "/".join(str(n) for n in sorted(per_pid.values(), reverse=True)) or "?"


_TICK = os.sysconf("SC_CLK_TCK")


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields from the state on: state ppid pgrp ...; utime, stime at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _redis_cpu() -> float:
    from tracking.events import events_redis

    info = events_redis().info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def _wrk(
    url: str, seconds: int, connections: int, threads: int, port: int | None = None, pgid: int | None = None
) -> dict:
    proc = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        stdout=subprocess.PIPE,
        text=True,
    )
    cpu_before = (_group_cpu(pgid), _redis_cpu()) if pgid else None
    split = ""
    if port is not None and shutil.which("ss"):
        time.sleep(min(1.0, seconds / 2))
        split = _split(port)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"wrk failed ({proc.returncode})")
    count = int(re.search(r"(\d+) requests in", out).group(1))
    # CPU per request of the server's processes and of Redis (which other clients may share):
    # steadier than req/s on a shared machine, though contention inflates it too.
    server_us = redis_us = 0.0
    if cpu_before is not None and count:
        server_us = (_group_cpu(pgid) - cpu_before[0]) / count * 1e6
        redis_us = (_redis_cpu() - cpu_before[1]) / count * 1e6
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "count": count,
        "server_us": server_us,
        "redis_us": redis_us,
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "non_2xx_3xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "split": split,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its workers included), SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _click_token(signer, transmission_id: str, rcpt_to: str, url: str, name: str) -> str:
    tokens = signer.for_message(
        message_id=uuid.uuid4().hex[:20],
        transmission_id=transmission_id,
        rcpt_to=rcpt_to,
        issued_at=int(time.time()),
        campaign_id="bench",
        template_id="tpl",
        template_version=1,
        rcpt_meta={"customer": "1234", "segment": "bench"},
        rcpt_tags=["bench"],
    )
    return tokens.click(url, name)


def _consent_register(size: int, clicked: str) -> None:
    """Fill the tracking consent register with ``size`` addresses (``size`` = 0 empties it):
    every third denied, every third with an earlier record (history), ``clicked`` granted.
    One statement each way, so a round's switch takes a second or so at 100,000."""
    from django.db import connection

    from consent.models import TrackingConsent

    table = TrackingConsent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        if not size:
            return
        cursor.execute(
            f"""INSERT INTO {table} (recipient, consent, source, evidence, recorded_at)
            SELECT 'consent' || i || '@example.net', 'granted', 'bench', 'signup form', now() - interval '30 days'
              FROM generate_series(1, %(size)s) AS i WHERE i %% 3 = 0
            UNION ALL
            SELECT 'consent' || i || '@example.net', CASE WHEN i %% 3 = 1 THEN 'denied' ELSE 'granted' END,
                   'bench', 'preference centre', now() - interval '1 day'
              FROM generate_series(1, %(size)s) AS i
            UNION ALL SELECT %(clicked)s, 'granted', 'bench', 'signup form', now()""",
            {"size": size, "clicked": clicked},
        )
        cursor.execute(f"ANALYZE {table}")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="bare and click runs alternate; medians are judged")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (one per core)")
    parser.add_argument(
        "--server",
        default="procfile",
        help=f"procfile (scripts/Procfile's track line), or a comma list of: {', '.join(CANDIDATES)}; or all",
    )
    parser.add_argument(
        "--lander-during", action="store_true", help="run the lander during the timed runs (default: start it after)"
    )
    parser.add_argument(
        "--consent", type=int, default=0, metavar="N",
        help="add a click run per round with N addresses in the tracking consent register (issue 14)",
    )  # fmt: skip
    args = parser.parse_args()
    names = list(CANDIDATES) if args.server == "all" else [n.strip() for n in args.server.split(",") if n.strip()]
    unknown = [n for n in names if n != "procfile" and n not in CANDIDATES]
    if unknown or not names:
        raise SystemExit(f"unknown server(s) {unknown}: use procfile or {', '.join(CANDIDATES)}")
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
    env.pop("ENGAGE_SERVE", None)  # the Procfile line sets it; a candidate gets it explicitly
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from tracking.events import events_redis
    from tracking.signing import tracking_signer

    signer = tracking_signer()
    stamp = int(time.time() * 1000)
    servers = {}  # name -> {process, port, log, transmission_id, token, command, rounds}
    logs = Path(tempfile.mkdtemp(prefix="engage-click-bench-"))
    lander = None
    lander_cmd = [PY, "manage.py", "land_events"]
    try:
        for index, name in enumerate(names):
            port = _free_port()
            argv, extra = _server_command(name, port, args.workers)
            # Its output goes to a file (printed if it fails to serve): access logs and queue
            # warnings would bury the figures. Written all the same, as honcho's pipe would be.
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(argv, cwd=ROOT, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)  # fmt: skip
            transmission_id = str(stamp + index)
            servers[name] = {
                "process": process,
                "port": port,
                "log": log,
                "transmission_id": transmission_id,
                "token": _click_token(
                    signer, transmission_id, "bench@example.com", "https://example.com/landing?utm_source=bench&x=%2F",
                    "Bench link",
                ),
                "command": argv[2] if name == "procfile" else shlex.join(argv),
                "rounds": [],
            }  # fmt: skip
        for name, server in servers.items():
            try:
                _wait_http(name, server["process"], server["port"])
            except SystemExit:
                print(server["log"].read_text(errors="replace")[-4000:], file=sys.stderr)
                raise
        if args.lander_during:
            lander = subprocess.Popen(lander_cmd, cwd=ROOT, env=env)
        # Warm-up clicks belong to transmission "1", so each server's timed count is exact.
        warm_token = _click_token(signer, "1", "warm@example.com", "https://example.com/warm", "Warm-up")
        warm = max(2, args.seconds // 5)
        for server in servers.values():
            base = f"http://127.0.0.1:{server['port']}"
            _wrk(f"{base}/bench/redirect", warm, args.connections, args.threads)
            _wrk(f"{base}/f/{warm_token}", warm, args.connections, args.threads)
        order = list(servers)
        for round_index in range(args.rounds):
            # Rotate the servers, and which URL goes first, from round to round.
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                server = servers[name]
                base = f"http://127.0.0.1:{server['port']}"
                runs = {}
                kinds = ["bare", "click"] + (["consent"] if args.consent else [])
                kinds = kinds[round_index % len(kinds) :] + kinds[: round_index % len(kinds)]
                if round_index % 2:
                    kinds.reverse()
                for kind in kinds:
                    if args.consent:
                        _consent_register(args.consent if kind == "consent" else 0, "bench@example.com")
                    url = f"{base}/bench/redirect" if kind == "bare" else f"{base}/f/{server['token']}"
                    runs[kind] = _wrk(
                        url, args.seconds, args.connections, args.threads, server["port"], server["process"].pid
                    )
                server["rounds"].append((runs["bare"], runs["click"], runs.get("consent")))
        if args.consent:  # the lander consults a full register
            _consent_register(args.consent, "bench@example.com")
        if lander is None:
            lander = subprocess.Popen(lander_cmd, cwd=ROOT, env=env)
        # Wait until the lander has caught up: the stream is empty and the counts settled.
        ids = [server["transmission_id"] for server in servers.values()]
        deadline, last = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT transmission_id, count(*) FROM tracking_event WHERE transmission_id = ANY(%s)"
                    " GROUP BY transmission_id",
                    [ids],
                )
                counts = dict(cursor.fetchall())
            if events_redis().xlen(env["ENGAGE_EVENT_STREAM"]) == 0 and counts == last:
                break
            last = counts
        landed = last or {}
    finally:
        for server in servers.values():
            _stop(server["process"])
        if lander is not None:
            lander.terminate()
            lander.wait(10)

    print(f"setup: {args.workers} worker processes per server, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds}s, {args.rounds} rounds, {os.cpu_count()} CPUs, lander "
          f"{'running during the runs' if args.lander_during else 'started after the timed runs'}; server logs in {logs}")  # fmt: skip
    all_ok = True
    summary = []
    for name, server in servers.items():
        rounds = server["rounds"]
        print(f"\n{name}: {server['command']}")
        for n, (bare, tracked, _consent) in enumerate(rounds, 1):
            print(f"  round {n}: bare {bare['rps']:6.0f} req/s p50 {bare['p50_ms']:.2f} ms p99 {bare['p99_ms']:5.2f} ms "
                  f"[split {bare['split']}] | click {tracked['rps']:6.0f} req/s p50 {tracked['p50_ms']:.2f} ms "
                  f"p99 {tracked['p99_ms']:5.2f} ms [split {tracked['split']}] | ratio {tracked['rps'] / bare['rps']:.0%} "
                  f"| CPU/request server+Redis: bare {bare['server_us']:.0f}+{bare['redis_us']:.0f} us, "
                  f"click {tracked['server_us']:.0f}+{tracked['redis_us']:.0f} us")  # fmt: skip
        bare_rps, click_rps = (statistics.median(r[i]["rps"] for r in rounds) for i in (0, 1))
        bare_p99, click_p99 = (statistics.median(r[i]["p99_ms"] for r in rounds) for i in (0, 1))
        ratio = statistics.median(r[1]["rps"] / r[0]["rps"] for r in rounds)
        print(f"  median bare redirect : {bare_rps:8.0f} req/s  p99 {bare_p99:.2f} ms")
        print(f"  median /f/<token>    : {click_rps:8.0f} req/s  p99 {click_p99:.2f} ms")
        bare_cpu, click_cpu = (statistics.median(r[i]["server_us"] for r in rounds) for i in (0, 1))
        bare_redis, click_redis = (statistics.median(r[i]["redis_us"] for r in rounds) for i in (0, 1))
        print(f"  CPU per request      : server bare {bare_cpu:.0f} us, click {click_cpu:.0f} us (+{click_cpu - bare_cpu:.0f});"
              f" Redis bare {bare_redis:.0f} us, click {click_redis:.0f} us (medians; Redis counts every client)")  # fmt: skip
        print(f"  ratio click/bare     : {ratio:.0%} (median of the rounds' ratios; target >= {TARGET_RATIO:.0%}) -> "
              f"{'OK' if ratio >= TARGET_RATIO else 'MISSED'}")  # fmt: skip
        print(f"  click p99            : {click_p99:.2f} ms (median; target <= {TARGET_P99_MS:g} ms) -> "
              f"{'OK' if click_p99 <= TARGET_P99_MS else 'MISSED'}")  # fmt: skip
        if args.consent:
            for n, (_bare, tracked, consent) in enumerate(rounds, 1):
                print(f"  round {n}: click with {args.consent:,} consent records {consent['rps']:6.0f} req/s "
                      f"p99 {consent['p99_ms']:5.2f} ms [split {consent['split']}] | without {tracked['rps']:6.0f} req/s "
                      f"| ratio {consent['rps'] / tracked['rps']:.0%} | server CPU/request {consent['server_us']:.0f} "
                      f"vs {tracked['server_us']:.0f} us")  # fmt: skip
            consent_ratio = statistics.median(r[2]["rps"] / r[1]["rps"] for r in rounds)
            consent_ok = consent_ratio >= TARGET_CONSENT_RATIO
            all_ok &= consent_ok
            print(f"  consent / no consent : {consent_ratio:.0%} (median of the rounds' ratios; target >= "
                  f"{TARGET_CONSENT_RATIO:.0%}) -> {'OK' if consent_ok else 'MISSED'}")  # fmt: skip
        measured = [run for r in rounds for run in r if run is not None]
        errors = sum(run["non_2xx_3xx"] for run in measured)
        socket_errors = "; ".join(run["socket_errors"] for run in measured if run["socket_errors"])
        print(f"  errors               : non-2xx/3xx {errors}, socket {socket_errors or 'none'}")
        served = sum(r[1]["count"] + (r[2]["count"] if r[2] else 0) for r in rounds)
        count = landed.get(server["transmission_id"], 0)
        extra = count - served
        allowed = args.connections * args.rounds * (2 if args.consent else 1)
        ok = 0 <= extra <= allowed and errors == 0
        all_ok &= ok
        print(f"  redirects (wrk count): {served}; click events landed: {count} (+{extra} in flight at wrk stops,"
              f" allowed <= {allowed}) -> {'OK' if ok else 'MISMATCH'}")  # fmt: skip
        summary.append(
            (name, click_rps, bare_rps, ratio, click_p99, bare_p99, click_cpu, bare_cpu, "OK" if ok else "MISMATCH")
        )
    print(
        "\n| server | click req/s | bare req/s | ratio | click p99 ms | bare p99 ms | server CPU us/req click / bare | events |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, click_rps, bare_rps, ratio, click_p99, bare_p99, click_cpu, bare_cpu, events in summary:
        print(f"| {name} | {click_rps:,.0f} | {bare_rps:,.0f} | {ratio:.0%} | {click_p99:.2f} | {bare_p99:.2f} "
              f"| {click_cpu:.0f} / {bare_cpu:.0f} | {events} |")  # fmt: skip
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
