"""Accept benchmark: time to answer ``POST /api/v1/transmissions`` with 10,000 inline recipients.

    .venv/bin/python bench/accept.py [--recipients 10000] [--runs 5]

Uses DATABASE_URL / REDIS_URL like the app, but the database ``engage_bench_tx`` (created and
migrated here) and Redis database 14 as the broker (so no other worker picks the generation
task up; the queue is emptied afterwards). Requests go through the whole Django stack
(middleware, auth, parser, view, service, COPY) with Django's test client. Target < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "engage_bench_tx"
BENCH_REDIS_DB = "14"


def bench_env() -> None:
    """Point DATABASE_URL / REDIS_URL at the bench database and Redis db, then set up Django."""
    db = urlsplit(os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = urlunsplit((db.scheme, db.netloc, f"/{BENCH_DB}", db.query, ""))
    redis = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = urlunsplit((redis.scheme, redis.netloc, f"/{BENCH_REDIS_DB}", redis.query, ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    params = settings.DATABASES["default"]
    admin = psycopg.connect(
        host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432, user=params["USER"],
        password=params["PASSWORD"] or None, dbname="postgres", autocommit=True,
    )  # fmt: skip
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
        admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    admin.close()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bench_env()
    import redis
    from django.conf import settings
    from django.test import Client

    from api_keys.grants import ALL_GRANTS
    from api_keys.services import api_key_create

    _key, raw = api_key_create(label="bench-accept", grants=list(ALL_GRANTS))
    client = Client(HTTP_AUTHORIZATION=raw)
    body = json.dumps({
        "campaign_id": "bench",
        "metadata": {"source": "bench"},
        "substitution_data": {"offer": "SPRING"},
        "content": {"from": "Bench <bench@sender.test>", "subject": "Hi {{name}}",
                    "html": "<p>Hello {{name}} <a href=\"https://example.com/?o={{offer}}\">go</a></p>",
                    "text": "Hello {{name}} https://example.com/"},
        "recipients": [
            {"address": {"email": f"user{i}@example.com", "name": f"User {i}"}, "tags": ["bench"],
             "metadata": {"i": i}, "substitution_data": {"name": f"User {i}"}}
            for i in range(args.recipients)
        ],
    })  # fmt: skip
    print(f"accept: POST /api/v1/transmissions with {args.recipients} inline recipients ({len(body) / 1e6:.1f} MB JSON)")
    times = []
    for run in range(args.runs + 1):
        started = time.perf_counter()
        response = client.post("/api/v1/transmissions", body, content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:500]
        assert response.json()["results"]["total_accepted_recipients"] == args.recipients
        if run:  # the first run warms up imports and caches
            times.append(elapsed)
            print(f"  run {run}: {elapsed * 1000:.0f} ms")
    median = statistics.median(times)
    print(f"accept: median {median * 1000:.0f} ms, best {min(times) * 1000:.0f} ms, "
          f"{args.recipients / median:,.0f} recipients/s; target < 1000 ms: {'PASS' if median < 1 else 'FAIL'}")  # fmt: skip
    redis.Redis.from_url(settings.REDIS_URL).delete("celery")


if __name__ == "__main__":
    main()
