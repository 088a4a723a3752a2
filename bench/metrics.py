"""Benchmark: ingest with rollups vs plain COPY, and metrics API latency at scale.

Loads N generated events (default 10 million) into a separate database (``engage_bench``,
created and migrated when missing) through ``analytics.ingest.events_insert_rows`` — the
real path: the idempotent COPY into the partitioned ``tracking_event``, rollups and webhook
queues — in batches, and COPYs the same rows into ``bench_plain``, a partitioned copy of
the table with the same indexes and no rollups. Each batch goes both ways in turn,
alternating which goes first (``--sequential``: all ingest batches, then all plain COPY
batches). Then times the summary and every group-by through the Django test client (API
key auth included), ~50 requests each, and prints p50/p95.

Run: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/engage REDIS_URL=redis://127.0.0.1:6379/0
.venv/bin/python bench/metrics.py --events 10000000`` (``--skip-load`` re-times queries only).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = datetime(2024, 6, 3, tzinfo=UTC)
DAYS = 7
CAMPAIGNS = [f"campaign-{i:02d}" for i in range(20)]
DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"] + [
    f"corp{i}.example" for i in range(14)
]
DOMAIN_WEIGHTS = [30, 15, 10, 8, 4, 4] + [2] * 14
LINKS = [("Shop", "https://shop.example.com/"), ("Blog", "https://blog.example.com/post"), ("", "https://example.com/")]


def bench_database() -> None:
    """Point Django at ``engage_bench`` on the server of DATABASE_URL, creating it if needed."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'engage_bench'").fetchone():
            conn.execute("CREATE DATABASE engage_bench")
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/engage_bench"))


def batches(total: int, size: int, seed: int = 42):
    """Deterministic event rows in EVENT_COLUMNS order, ``size`` at a time (messages are
    never split across batches except by the final cut)."""
    from psycopg.types.json import Jsonb

    rng = random.Random(seed)
    meta, tags, empty = Jsonb({"plan": "pro"}), Jsonb(["news"]), Jsonb({})
    made, number, batch = 0, 0, []
    span = DAYS * 86400
    while made < total:
        number += 1
        message_id = f"{number:020x}"
        campaign = CAMPAIGNS[number % len(CAMPAIGNS)]
        template = f"template-{number % len(CAMPAIGNS) % 5}"
        domain = rng.choices(DOMAINS, DOMAIN_WEIGHTS)[0]
        rcpt = f"u{number}@{domain}"
        at = START + timedelta(seconds=rng.randrange(span))
        kinds: list[tuple[str, datetime, str, str, str]] = [("injection", at, "", "", "")]
        fate = rng.random()
        if fate < 0.08:
            kinds.append(("bounce", at + timedelta(seconds=30), rng.choice(["10", "21", "50", "25", "1"]), "", ""))
        else:
            if fate < 0.2:
                kinds.append(("delay", at + timedelta(seconds=60), "", "", ""))
            kinds.append(("delivery", at + timedelta(seconds=90), "", "", ""))
            if rng.random() < 0.35:
                for _ in range(rng.choice([1, 1, 2])):
                    kinds.append(("open", at + timedelta(seconds=rng.randrange(120, 86400)), "", "", ""))
                if rng.random() < 0.4:
                    name, url = rng.choice(LINKS)
                    kinds.append(("click", at + timedelta(seconds=rng.randrange(200, 90000)), "", name, url))
        for kind, stamp, bounce_class, link_name, link_url in kinds:
            made += 1
            batch.append((
                str(10**15 + made), kind, stamp, message_id, str(number // 1000), campaign, template, "1",
                rcpt, rcpt, domain, meta, tags, "News <news@example.com>", "Weekly news", "", "", "",
                link_name, link_url, False, bounce_class, "", "", empty,
            ))  # fmt: skip
            if len(batch) == size or made == total:
                yield batch
                batch = []
                if made == total:
                    return


def load(total: int, size: int, *, interleave: bool) -> tuple[float, float]:
    from django.db import connection, transaction

    from analytics.ingest import events_insert_rows
    from tracking.models import EVENT_COLUMNS

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tracking_event, analytics_rollup_hourly, analytics_rollup_daily, analytics_link_rollup_hourly, "
            "analytics_message_engagement, analytics_message_link_click, analytics_webhook_pending"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_plain")
        cursor.execute("CREATE TABLE bench_plain (LIKE tracking_event INCLUDING ALL) PARTITION BY RANGE (timestamp)")
        for day in range(-1, DAYS + 3):
            lo = START + timedelta(days=day)
            cursor.execute(
                f"CREATE TABLE bench_plain_{day + 1} PARTITION OF bench_plain FOR VALUES FROM (%s) TO (%s)",
                [lo, lo + timedelta(days=1)],
            )
            cursor.execute("SELECT engage_event_partition(%s)", [lo.date()])
    columns = ", ".join(EVENT_COLUMNS)

    def ingest(rows: list[tuple]) -> float:
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            events_insert_rows(cursor, rows)
        return time.perf_counter() - began

    def plain(rows: list[tuple]) -> float:
        began = time.perf_counter()
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(f"COPY bench_plain ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - began

    ingest_seconds = plain_seconds = 0.0
    if interleave:
        # Each batch both ways, in alternating order, so load from other processes on a
        # shared machine (and checkpoints) falls on both sides alike.
        for number, rows in enumerate(batches(total, size)):
            if number % 2 == 0:
                ingest_seconds += ingest(rows)
                plain_seconds += plain(rows)
            else:
                plain_seconds += plain(rows)
                ingest_seconds += ingest(rows)
            if number % 20 == 0:
                done = (number + 1) * size
                print(
                    f"  {done:,} rows: ingest {done / ingest_seconds:,.0f} rows/s, plain {done / plain_seconds:,.0f}",
                    flush=True,
                )
    else:
        for number, rows in enumerate(batches(total, size)):
            ingest_seconds += ingest(rows)
            if number % 20 == 0:
                done = (number + 1) * size
                print(f"  ingest: {done:,} rows, {done / ingest_seconds:,.0f} rows/s", flush=True)
        for rows in batches(total, size):
            plain_seconds += plain(rows)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return total / ingest_seconds, total / plain_seconds


def time_queries(requests: int) -> list[tuple[str, float, float, int]]:
    from rest_framework.test import APIClient

    from api_keys.services import api_key_create

    _key, raw = api_key_create(label="bench", grants=["metrics/view"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=raw)
    window = {
        "from": START.strftime("%Y-%m-%dT%H:%M"),
        "to": (START + timedelta(days=DAYS + 2)).strftime("%Y-%m-%dT%H:%M"),
    }
    metrics = (
        "count_targeted,count_injected,count_sent,count_accepted,count_delivered,count_bounce,count_hard_bounce,"
        "count_soft_bounce,count_block_bounce,count_admin_bounce,count_undetermined_bounce,count_delayed,"
        "count_rendered,count_unique_rendered,count_unique_confirmed_opened,count_clicked,count_unique_clicked"
    )
    cases = [
        ("summary", "deliverability", {}),
        ("summary, 1 campaign", "deliverability", {"campaigns": "campaign-03"}),
        ("by domain", "deliverability/domain", {}),
        ("by campaign", "deliverability/campaign", {}),
        ("by template", "deliverability/template", {}),
        ("time-series hour", "deliverability/time-series", {"precision": "hour"}),
        ("time-series day (tz)", "deliverability/time-series", {"precision": "day", "timezone": "America/New_York"}),
        ("link-name", "deliverability/link-name", {"metrics": "count_clicked,count_raw_clicked"}),
        ("campaigns list", "campaigns", {}),
    ]
    out = []
    for label, path, extra in cases:
        params = {**window, "metrics": metrics, **extra}
        samples = []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(f"/api/v1/metrics/{path}", params)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.content[:300]
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(round(0.95 * len(samples))) - 1)]
        out.append((label, statistics.median(samples), p95, len(response.json()["results"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument(
        "--sequential", action="store_true", help="all ingest batches, then all plain COPY batches (default: alternate)"
    )
    args = parser.parse_args()
    bench_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.skip_load:
        print(f"loading {args.events:,} events in batches of {args.batch:,} ...", flush=True)
        ingest_rate, plain_rate = load(args.events, args.batch, interleave=not args.sequential)
        print(f"ingest with rollups: {ingest_rate:,.0f} rows/s")
        print(f"plain COPY:          {plain_rate:,.0f} rows/s")
        print(f"ratio:               {ingest_rate / plain_rate:.1%} (target >= 50%)")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_rollup_hourly")
        rollup_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracking_event")
        event_rows = cursor.fetchone()[0]
    print(f"events: {event_rows:,}; hourly rollup rows: {rollup_rows:,}")
    print(f"{'query':28} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}")
    for label, p50, p95, rows in time_queries(args.requests):
        flag = "" if p95 <= 200 else "  OVER 200 ms"
        print(f"{label:28} {p50:8.1f} {p95:8.1f} {rows:6}{flag}")


if __name__ == "__main__":
    main()
