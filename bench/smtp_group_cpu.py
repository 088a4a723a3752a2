"""CPU and wall time per message of ``transmissions.generate_group`` on stored SMTP messages,
in this process (no listener, no Celery worker): the worker's share of SMTP-in → relay-out
(issue 13, "Benchmark"; bench/RESULTS.md, "SMTP injection: batch generation").

    .venv/bin/python bench/smtp_group_cpu.py [--messages 300] [--group 10] [--size 10240]
                                             [--tree DIR] [--profile 25]

Stores ``--messages`` messages like bench/smtp_injection.py's (10 KB HTML, one recipient, a
small ``X-MSYS-API`` with open and click tracking) through the listener's own store
(``smtp_message_prepare`` + ``smtp_messages_store``), one transmission each, in groups of
``--group`` as the listener's group commit makes them (with ``--distinct`` each with an HTML
body of its own, so no two compiles share a link scan: ``mailcore.rfc822._scan_part``); then runs the group task
(``transmission_generate_group_task.apply``, eager, this process) on each group against
bench/generation.py's counting sink. Prints ``time.process_time`` and wall time per message
over all groups, with the CPU of the PostgreSQL backend serving this process's queries (one
warm-up group first, not counted) and, with ``--profile N``, the N
costliest functions of a ``cProfile`` run (cumulative). ``--tree`` runs another checkout's
code (e.g. a ``git worktree`` of main) with this script, for a before/after in one window.
Database and Redis db: bench/accept.py's ``ENGAGE_BENCH_DB`` / ``ENGAGE_BENCH_REDIS_DB``; the
rows it made are deleted at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import logging
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept import ROOT, bench_env, cpu_seconds  # noqa: E402
from generation import clock_reset, clock_wait, sink_start  # noqa: E402


def _message(size: int) -> bytes:
    """bench/smtp_injection.py's message (loaded by path: its module name is the app's)."""
    spec = importlib.util.spec_from_file_location("bench_smtp_injection", Path(__file__).with_name("smtp_injection.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._message(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="messages timed, default 300")
    parser.add_argument("--group", type=int, default=10, help="transmissions per group task, default 10")
    parser.add_argument("--size", type=int, default=10240, help="message size in bytes, default 10240")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code runs, default this one")
    parser.add_argument(
        "--distinct", action="store_true", help="give each message an HTML body of its own (one link's URL differs)"
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    args = parser.parse_args()

    tree = args.tree.resolve()
    os.chdir(tree)
    os.environ.setdefault("ENGAGE_LOG_LEVEL", "WARNING")
    bench_env(tree)
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.db import connection

    sink, port, clock = sink_start()
    settings.ENGAGE_RELAY_URL = f"smtp://127.0.0.1:{port}"

    from smtp_injection.services import Injection, SmtpPrincipal, smtp_message_prepare, smtp_messages_store
    from transmissions.tasks import transmission_generate_group_task

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM transmissions_transmission")
        (before,) = cursor.fetchone()
    data = _message(args.size)
    principal = SmtpPrincipal(key_id=1, label="bench")

    def stored_group(size: int, first: int) -> list[int]:
        prepared = [
            smtp_message_prepare(injection=Injection(
                principal=principal, listener_hostname="localhost", client_address="127.0.0.1", helo="bench",
                tls=True, mail_from="bounce@sender.example.com", rcpt_tos=(f"user{first + n}@example.com",),
                data=data.replace(b"id=12345", f"id={first + n:05d}".encode(), 1) if args.distinct else data,
            ))
            for n in range(size)
        ]  # fmt: skip
        return smtp_messages_store(prepared=prepared)

    try:
        warm = stored_group(args.group, 0)
        transmission_generate_group_task.apply(args=(warm,)).get()
        groups = [stored_group(args.group, n) for n in range(args.group, args.messages + args.group, args.group)]
        count = sum(len(group) for group in groups)
        clock_reset(clock)
        profile = cProfile.Profile() if args.profile else None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        server = cpu_seconds(backend)
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        for group in groups:
            transmission_generate_group_task.apply(args=(group,)).get()
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        server = cpu_seconds(backend) - server
        reached = clock_wait(clock, count, time.perf_counter() + 30)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, count(*) FROM transmissions_message WHERE transmission_id > %s GROUP BY state", [before]
            )
            states = dict(cursor.fetchall())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM transmissions_message WHERE transmission_id > %s", [before])
            cursor.execute("DELETE FROM transmissions_transmission WHERE id > %s", [before])
        sink.terminate()
    print(f"generate_group ({tree}): {count} SMTP messages of {len(data):,} bytes in groups of {args.group}"
          f"{', each body its own' if args.distinct else ', one body'}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  CPU {cpu * 1000 / count:.2f} ms/message (PostgreSQL backend {server * 1000 / count:.3f}), "
          f"wall {wall * 1000 / count:.2f} ms/message "
          f"({count / wall:,.0f} msg/s in one process); sink counted {reached}; states {states}")  # fmt: skip
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
