"""Accept benchmark: time to answer ``POST /api/v1/transmissions`` with 10,000 inline recipients,
this tree against a baseline tree, side by side in the same run.

    .venv/bin/python bench/accept.py [--recipients 10000] [--runs 5] [--rounds 5]
                                     [--baseline 368d10a] [--baseline-dir /tmp/engage-baseline]
    .venv/bin/python bench/accept.py --only current      # this tree alone, as before

The baseline is a ``git worktree`` of ``--baseline`` (default 368d10a, the last commit before
the schema layer of issue 10), made on first use. Each round runs both trees, each in its own
process (so each imports only its own code), alternating which goes first; each process
warms up with one request and then times ``--runs`` requests. The verdict compares the
medians of all timed requests of each side: the schema layer may cost at most 20 % (issue 10
§2), and the current tree must answer in under 1 s.

Uses DATABASE_URL / REDIS_URL (and the keys, random ones when none are set) like the app, but the database ``engage_bench_tx`` (created and
migrated here; the transmissions tables are emptied before each process so both sides COPY
into the same table size) and Redis database 14 as the broker (so no worker picks the
generation task up; the queue is emptied afterwards). Requests go through the whole Django
stack (middleware, auth, parser, schema, view, service, COPY) with Django's test client.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# ENGAGE_BENCH_DB / ENGAGE_BENCH_REDIS_DB name others, so that two people can bench side by side.
BENCH_DB = os.environ.get("ENGAGE_BENCH_DB", "engage_bench_tx")
BENCH_REDIS_DB = os.environ.get("ENGAGE_BENCH_REDIS_DB", "14")
BASELINE = "368d10a"
MAX_SLOWDOWN = 1.20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds (proc(5)), plus with
    ``reaped`` the CPU of its children that ended and were waited for (cutime + cstime);
    raises ``FileNotFoundError`` or ``ProcessLookupError`` for a process that is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(field) for field in fields[11 : 15 if reaped else 13]) / CLOCK_TICKS


def bench_env(tree: Path = ROOT) -> None:
    """Point DATABASE_URL / REDIS_URL at the bench database and Redis db, set up Django from
    ``tree`` (this checkout unless told; bench/generation.py uses it too), migrate the bench
    database and vacuum it (:func:`bench_vacuum`: earlier runs' deleted rows gone)."""
    db = urlsplit(os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = urlunsplit((db.scheme, db.netloc, f"/{BENCH_DB}", db.query, ""))
    redis = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = urlunsplit((redis.scheme, redis.netloc, f"/{BENCH_REDIS_DB}", redis.query, ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
    sys.path.insert(0, str(tree))
    import django

    django.setup()
    from django.core.management import call_command

    with _connect("postgres") as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    call_command("migrate", verbosity=0)
    bench_vacuum()


def _connect(dbname: str):
    """An autocommit psycopg connection to ``dbname`` with Django's settings (set up first)."""
    import psycopg
    from django.conf import settings

    params = settings.DATABASES["default"]
    return psycopg.connect(
        host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432, user=params["USER"],
        password=params["PASSWORD"] or None, dbname=dbname, autocommit=True,
    )  # fmt: skip


def bench_vacuum() -> None:
    """``VACUUM (ANALYZE)`` the bench database, what autovacuum does on a live server (this
    machine's PostgreSQL runs without it). Each run deletes the rows it made: without a vacuum
    their dead tuples pile up run after run, and the group statements of the SMTP benches
    scanned them (bench/RESULTS.md, "Session 17": a group's finish 23 ms against 5 ms). Within
    a run, statistics taken while the tables were empty make the planner scan them whole as
    they grow: a long-lived connection keeps those plans (the foreign-key check of every
    message row a sequential scan of the transmission table; bench/RESULTS.md, "Session 18"),
    so the benches call this before each measured side, as autovacuum's analyze would."""
    with _connect(BENCH_DB) as bench:
        bench.execute("VACUUM (ANALYZE)")


def request_body(recipients: int) -> str:
    return json.dumps({
        "campaign_id": "bench",
        "metadata": {"source": "bench"},
        "substitution_data": {"offer": "SPRING"},
        "content": {"from": "Bench <bench@sender.test>", "subject": "Hi {{name}}",
                    "html": "<p>Hello {{name}} <a href=\"https://example.com/?o={{offer}}\">go</a></p>",
                    "text": "Hello {{name}} https://example.com/"},
        "recipients": [
            {"address": {"email": f"user{i}@example.com", "name": f"User {i}"}, "tags": ["bench"],
             "metadata": {"i": i}, "substitution_data": {"name": f"User {i}"}}
            for i in range(recipients)
        ],
    })  # fmt: skip


def breakdown(body: str) -> dict[str, float]:
    """Seconds spent in the edge's steps on this body, outside the request, best of three:
    JSON parsing (the API's parser where the tree has one), the schema check (where the tree
    has one), and normalizing every recipient."""
    from recipient_lists.recipients import normalize_recipient

    try:
        from engage.api.parsers import loads
    except ImportError:
        loads = json.loads
    try:
        from transmissions.schemas import TransmissionCreate
    except ImportError:
        TransmissionCreate = None  # noqa: N806
    data = loads(body)
    steps = {
        "json": lambda: loads(body),
        "schema": (lambda: TransmissionCreate.model_validate(data)) if TransmissionCreate is not None else None,
        "recipients": lambda: [normalize_recipient(item, index) for index, item in enumerate(data["recipients"])],
    }
    best: dict[str, float] = {}
    for name, step in steps.items():
        if step is None:
            continue
        for _ in range(3):
            started = time.perf_counter()
            step()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    return best


def measure(tree: Path, *, recipients: int, runs: int) -> dict:
    """One process's figures: ``{"times": [seconds per timed request], "cpu": [this process's
    CPU seconds per request: less disturbed by other load, blind to PostgreSQL's share],
    "steps": {...}}``."""
    bench_env(tree)
    import redis
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from api_keys.grants import ALL_GRANTS
    from api_keys.services import api_key_create

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE transmissions_message, transmissions_transmission CASCADE")
    _key, raw = api_key_create(label="bench-accept", grants=list(ALL_GRANTS))
    client = Client(HTTP_AUTHORIZATION=raw)
    body = request_body(recipients)
    times, cpu = [], []
    for run in range(runs + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.post("/api/v1/transmissions", body, content_type="application/json")
        elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        assert response.status_code == 200, response.content[:500]
        assert response.json()["results"]["total_accepted_recipients"] == recipients
        if run:  # the first run warms up imports and caches
            times.append(elapsed)
            cpu.append(elapsed_cpu)
    redis.Redis.from_url(settings.REDIS_URL).delete("celery")
    return {"times": times, "cpu": cpu, "steps": breakdown(body), "mb": len(body) / 1e6}


def baseline_tree(ref: str, directory: Path) -> Path:
    if not (directory / "manage.py").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(directory), ref], check=True)
    head = subprocess.run(["git", "-C", str(directory), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"baseline: {directory} at {head.stdout.strip()} (wanted {ref})")
    return directory


def run_side(tree: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(tree)]
    command += ["--recipients", str(args.recipients), "--runs", str(args.runs)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tree)
    if done.returncode:
        sys.exit(f"{tree}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="timed requests per process")
    parser.add_argument("--rounds", type=int, default=5, help="processes per side, alternating")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the baseline tree")
    parser.add_argument("--baseline-dir", type=Path, default=Path("/tmp/engage-baseline"))
    parser.add_argument("--only", choices=["current", "baseline"], help="measure one side only")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, recipients=args.recipients, runs=args.runs)))
        return

    # Random keys for the bench's processes when none are configured (Engage refuses to start
    # without them); nothing the bench signs outlives it.
    os.environ.setdefault("ENGAGE_SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("ENGAGE_TRACKING_KEYS", f"1:{secrets.token_urlsafe(32)}")
    sides = {"current": ROOT}
    if args.only != "current":
        sides["baseline"] = baseline_tree(args.baseline, args.baseline_dir)
    if args.only == "baseline":
        del sides["current"]
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    steps: dict[str, list[dict]] = {name: [] for name in names}
    print(f"accept: POST /api/v1/transmissions with {args.recipients} inline recipients; "
          f"{args.rounds} rounds x {args.runs} timed requests per side, sides alternating")  # fmt: skip
    for round_number in range(args.rounds):
        order = names if round_number % 2 == 0 else names[::-1]
        line = []
        for name in order:
            figures = run_side(sides[name], args)
            times[name] += figures["times"]
            cpu[name] += figures["cpu"]
            steps[name].append(figures["steps"])
            line.append(f"{name} median {ms(statistics.median(figures['times']))}")
        print(f"  round {round_number + 1}: " + ", ".join(line))
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name in names:
        parts = ", ".join(f"{step} {ms(statistics.median(s[step] for s in steps[name]))}" for step in steps[name][0])
        print(f"accept {name:8}: median {ms(medians[name])}, best {ms(min(times[name]))}, "
              f"{args.recipients / medians[name]:,.0f} recipients/s; Django process CPU median "
              f"{ms(cpu_medians[name])}  (outside the request: {parts})")  # fmt: skip
    if "current" in medians:
        verdict = "PASS" if medians["current"] < 1 else "FAIL"
        print(f"target < 1000 ms with the schema layer: {verdict}")
    if len(medians) == 2:
        ratio = medians["current"] / medians["baseline"]
        verdict = "PASS" if ratio <= MAX_SLOWDOWN else "FAIL"
        print(f"ratio current / baseline: {ratio:.3f} (at most {MAX_SLOWDOWN:.2f}): {verdict}; "
              f"CPU ratio {cpu_medians['current'] / cpu_medians['baseline']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
