"""CPU per message of the SMTP listener's group statement, on both sides of the socket
(issue 13; bench/RESULTS.md, "The store on the loop"): this process (building and binding
the parameters, psycopg) and the PostgreSQL backend that runs it (from /proc), with the
statement's wall time.

    .venv/bin/python bench/smtp_store_cpu.py [--groups 400] [--group 3] [--size 10240] [--sync]

Prepares ``--groups`` x ``--group`` messages like bench/smtp_injection.py's (10 KB HTML, one
recipient, a small ``X-MSYS-API``) with ``smtp_message_prepare``, then stores them group by
group as the listener does: ``transmissions_insert_group_async`` on a connection of
``transmissions_store_connect``, with a deadline (the statement prepared on the server); with
``--sync``, ``transmissions_insert_group`` on Django's connection (the same statement, not
prepared: Django's connection prepares nothing). One warm-up group first (not counted). Database: bench/accept.py's
``ENGAGE_BENCH_DB``; the rows it made are deleted at the end. Run it from another checkout
(a ``git worktree``) for a before/after in one window.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept import ROOT, bench_env, cpu_seconds  # noqa: E402
from smtp_group_cpu import _message  # noqa: E402  (bench/smtp_injection.py's message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=400, help="groups timed, default 400")
    parser.add_argument("--group", type=int, default=3, help="messages per group, default 3")
    parser.add_argument("--size", type=int, default=10240, help="message size in bytes, default 10240")
    parser.add_argument("--sync", action="store_true", help="Django's connection, as the tests store")
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("ENGAGE_LOG_LEVEL", "WARNING")
    bench_env()
    logging.disable(logging.WARNING)
    from django.db import connection

    from smtp_injection.services import Injection, SmtpPrincipal, smtp_message_prepare
    from transmissions.services import (
        transmissions_insert_group,
        transmissions_insert_group_async,
        transmissions_store_connect,
    )

    data = _message(args.size)
    principal = SmtpPrincipal(key_id=1, label="bench")

    def prepared(number: int):
        return smtp_message_prepare(injection=Injection(
            principal=principal, listener_hostname="localhost", client_address="127.0.0.1", helo="bench", tls=True,
            mail_from="bounce@sender.example.com", rcpt_tos=(f"user{number}@example.com",), data=data,
        ))  # fmt: skip

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0), pg_backend_pid() FROM transmissions_transmission")
        before, backend = cursor.fetchone()
    loop = asyncio.new_event_loop()
    if not args.sync:
        store = loop.run_until_complete(transmissions_store_connect())
        backend = store.database.pgconn.backend_pid

    def insert(group) -> None:
        if args.sync:
            transmissions_insert_group(prepared=group)
            return
        deadline = store.server_time(time.monotonic() + 30)
        loop.run_until_complete(
            transmissions_insert_group_async(database=store.database, prepared=group, deadline=deadline)
        )

    groups = [[prepared(g * args.group + n) for n in range(args.group)] for g in range(args.groups + 1)]
    try:
        insert(groups[0])
        server, client, wall = cpu_seconds(backend), time.process_time(), time.perf_counter()
        for group in groups[1:]:
            insert(group)
        count = args.groups * args.group
        server = (cpu_seconds(backend) - server) * 1000 / count
        client = (time.process_time() - client) * 1000 / count
        wall = (time.perf_counter() - wall) * 1000 / count
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM transmissions_message WHERE transmission_id > %s", [before])
            cursor.execute("DELETE FROM transmissions_transmission WHERE id > %s", [before])
    print(f"group statement ({ROOT}, {'Django connection' if args.sync else 'listener store connection'}): {count} messages of {len(data):,} bytes in groups of {args.group}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        f"  per message: this process {client:.3f} ms CPU, PostgreSQL backend {server:.3f} ms CPU, wall {wall:.3f} ms"
    )


if __name__ == "__main__":
    main()
