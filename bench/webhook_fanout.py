"""Benchmark: event landing and webhook batch building with 1 webhook and with 100 (issue 11).

Two databases on the server of DATABASE_URL (``engage_bench_hooks1`` and
``engage_bench_hooks100``, or ``--db-prefix``; created and migrated when missing, emptied at
the start): one has
1 active webhook (every event type), the other 100 (four event filters, 25 webhooks each).
The same N generated events (default 50,000, mixed types, engagement events without their
From/Subject as the tracking endpoints record them) land in both through the real ingest
path, ``analytics.ingest.events_insert``, in batches of 5,000 (the lander's size), one
transaction each, alternating per batch which database goes first so load from other
processes falls on both alike. Then ``webhook_batches_build`` cuts every batch (force) in
each, timed.

Prints landing events/s for both and their ratio (target: 100 webhooks >= 90 % of 1), the
rows landing wrote to the webhook tables, and the building time, batches and stored bodies.

Run: ``DATABASE_URL=postgresql://postgres@127.0.0.1:5432/engage REDIS_URL=redis://127.0.0.1:6379/0
.venv/bin/python bench/webhook_fanout.py --events 50000`` (or ``bench/run webhooks``).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mailcore.events import NAMES  # noqa: E402  (the checkout is importable only from here on)

START = datetime(2024, 6, 3, tzinfo=UTC)
ALL = list(NAMES)  # fmt: skip
FILTERS = [ALL, ["click", "initial_open", "open"], ["bounce", "delay", "delivery", "injection"], ["click"]]
TABLES = (
    "tracking_event",
    "analytics_rollup_hourly",
    "analytics_rollup_daily",
    "analytics_link_rollup_hourly",
    "analytics_message_engagement",
    "analytics_message_link_click",
    "analytics_webhook_pending",
    "analytics_webhook_feed",
    "analytics_webhook_batch",
    "analytics_webhook_payload",
    "analytics_webhook",
)  # those of them that exist (the code before the feed has no feed or payload table)


def databases_ensure(prefix: str) -> dict[int, str]:
    """Create ``<prefix>1`` and ``<prefix>100`` when missing; point DATABASE_URL at the first."""
    import psycopg

    names = {1: f"{prefix}1", 100: f"{prefix}100"}
    parts = urlsplit(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        for name in names.values():
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f"CREATE DATABASE {name}")
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{names[1]}"))
    return names


def events(total: int, seed: int = 11) -> list[dict]:
    """Deterministic events of a day of sending: injection, delivery or bounce, delays,
    opens, clicks and a few unsubscribes and rejections."""
    rng = random.Random(seed)
    out: list[dict] = []
    number = 0
    while len(out) < total:
        number += 1
        domain = rng.choice(["gmail.com", "yahoo.com", "corp.example", "outlook.com"])
        msg = {
            "message_id": f"{number:020x}", "transmission_id": str(number // 500), "campaign_id": f"c{number % 7}",
            "template_id": f"t{number % 3}", "rcpt_to": f"u{number}@{domain}", "raw_rcpt_to": f"u{number}@{domain}",
            "rcpt_meta": {"plan": "pro"}, "rcpt_tags": ["news"],
        }  # fmt: skip
        at = START + timedelta(seconds=rng.randrange(86400))
        send = {"friendly_from": "News <news@example.com>", "subject": "Weekly"}
        if rng.random() < 0.02:
            kinds = [("policy_rejection", at, {**send, "reason": "550 policy"})]
        else:
            kinds = [("injection", at, send)]
            if rng.random() < 0.15:
                kinds.append(("delay", at + timedelta(seconds=60), {**send, "reason": "451 later"}))
            if rng.random() < 0.08:
                kinds.append(("bounce", at + timedelta(seconds=90), {**send, "bounce_class": "10"}))
            else:
                kinds.append(("delivery", at + timedelta(seconds=90), send))
                if rng.random() < 0.4:
                    kinds.append(("initial_open", at + timedelta(seconds=300), {"user_agent": "UA"}))
                    for _ in range(rng.choice([1, 1, 2])):
                        kinds.append(("open", at + timedelta(seconds=rng.randrange(300, 7200)), {"user_agent": "UA"}))
                    for _ in range(rng.choice([0, 1, 2])):
                        link = {"target_link_name": "Shop", "target_link_url": "https://shop.example.com/"}
                        kinds.append(("click", at + timedelta(seconds=rng.randrange(400, 9000)), link))
                    if rng.random() < 0.03:
                        kinds.append(("list_unsubscribe", at + timedelta(seconds=9500), {}))
        for kind, stamp, fields in kinds:
            out.append({"event_id": str(10**14 + len(out)), "type": kind, "timestamp": stamp, **msg, **fields})
    return out[:total]


def prepare(alias: str, hooks: int) -> None:
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", database=alias, verbosity=0)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT array_agg(t) FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL", [list(TABLES)])
        cursor.execute(f"TRUNCATE {', '.join(cursor.fetchone()[0])}")
        filters = [ALL] if hooks == 1 else [FILTERS[number % len(FILTERS)] for number in range(hooks)]
        for number, wanted in enumerate(filters):
            cursor.execute(
                "INSERT INTO analytics_webhook (id, name, target, events, auth_type, auth_token, auth_request_details, "
                "auth_credentials, custom_headers, active, created_at) VALUES (gen_random_uuid(), %s, "
                "'http://127.0.0.1:9/hook', %s, 'none', '', '{}', '{}', '{}', true, now())",
                [f"hook {number}", wanted],
            )


def land(alias: str, batch: list[dict]) -> float:
    from django.db import connections, transaction

    from analytics.ingest import event_row, events_insert

    rows = [event_row(event) for event in batch]  # as the lander has them
    began = time.perf_counter()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        events_insert(cursor, rows, returning=False)
    return time.perf_counter() - began


def count(alias: str, sql: str, table: str = "") -> int | None:
    """``sql``'s number on ``alias``; None when ``table`` does not exist there."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        if table:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            if not cursor.fetchone()[0]:
                return None
        cursor.execute(sql)
        return cursor.fetchone()[0]


def figure(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def build(alias: str) -> tuple[float, int]:
    """Time ``webhook_batches_build`` (force) on ``alias``: it works on the default
    connection, so point that at the alias's database for the call."""
    from django.db import connection, connections

    from analytics.webhooks import webhook_batches_build

    connection.close()
    saved = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = connections[alias].settings_dict["NAME"]
    try:
        began = time.perf_counter()
        made = webhook_batches_build(now=START + timedelta(days=30), force=True)
        return time.perf_counter() - began, len(made)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--db-prefix", default="engage_bench_hooks", help="databases <prefix>1 and <prefix>100")
    args = parser.parse_args()
    databases = databases_ensure(args.db_prefix)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    hundred = {**settings.DATABASES["default"], "NAME": databases[100]}
    both = connections.configure_settings({"default": settings.DATABASES["default"], "hooks100": hundred})
    connections.settings["hooks100"] = both["hooks100"]
    arms = {1: "default", 100: "hooks100"}
    for hooks, alias in arms.items():
        prepare(alias, hooks)
    generated = events(args.events)
    batches = [generated[i : i + args.batch] for i in range(0, len(generated), args.batch)]
    types = sorted({e["type"] for e in generated})
    print(f"{len(generated):,} events ({', '.join(types)}) in {len(batches)} batches of {args.batch:,}", flush=True)
    seconds = dict.fromkeys(arms, 0.0)
    for number, batch in enumerate(batches):
        order = list(arms) if number % 2 == 0 else list(reversed(arms))
        for hooks in order:
            seconds[hooks] += land(arms[hooks], batch)
    rates = {hooks: len(generated) / seconds[hooks] for hooks in arms}
    print(f"{'webhooks':>8} {'landing ev/s':>13} {'feed rows':>10} {'pending rows':>13}")
    for hooks, alias in arms.items():
        feed = count(alias, "SELECT count(*) FROM analytics_webhook_feed", "analytics_webhook_feed")
        pending = count(alias, "SELECT count(*) FROM analytics_webhook_pending")
        print(f"{hooks:>8} {rates[hooks]:>13,.0f} {figure(feed):>10} {figure(pending):>13}")
    ratio = rates[100] / rates[1]
    print(f"landing ratio 100/1 webhooks: {ratio:.1%} (target >= 90%: {'met' if ratio >= 0.9 else 'NOT met'})")
    print(
        f"{'webhooks':>8} {'filters':>8} {'build s':>8} {'batches':>8} {'bodies':>7} {'records':>9} {'records/s':>10}"
    )
    built = {}
    for hooks, alias in arms.items():
        took, made = build(alias)
        built[hooks] = took
        bodies = count(alias, "SELECT count(*) FROM analytics_webhook_payload", "analytics_webhook_payload")
        records = count(alias, "SELECT coalesce(sum(batch_size), 0) FROM analytics_webhook_batch") or 0
        filters = count(alias, "SELECT count(DISTINCT events) FROM analytics_webhook")
        print(
            f"{hooks:>8} {filters:>8} {took:>8.2f} {made:>8,} {figure(bodies):>7} {records:>9,} {records / took:>10,.0f}"
        )
    print(f"building ratio 100/1 webhooks: {built[100] / built[1]:.2f}x")


if __name__ == "__main__":
    main()
