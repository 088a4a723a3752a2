"""Generation-to-relay benchmark: messages/s from a real Celery worker (prefork, -c 2) into a
local aiosmtpd sink, next to the sink's own rate fed directly by smtplib in the same run.

    .venv/bin/python bench/generation.py [--messages 5000] [--concurrency 2] [--rounds 3]
    .venv/bin/python bench/generation.py --messages 100000 --suppressed 10000 [--rounds 3]

Database ``engage_bench_tx`` and Redis db 14 as in bench/accept.py (``ENGAGE_BENCH_DB`` /
``ENGAGE_BENCH_REDIS_DB`` name others).

With ``--suppressed N`` the direct phase gives way to a suppression comparison (issue 14):
in each round the same worker sends the list twice, with an empty suppression list and with N
``non_transactional`` entries (the order alternates from round to round), every (messages / N)-th recipient's; the rate is messages
ended (delivered or bounced) per second, POST to the last one recorded, the same clock for
both. Target: the suppressed run keeps >= 90% of the rate without suppression (medians). The sink runs in its own
process, answers 250 to everything, and is the one clock of both rates: (messages - 1) /
(time of the last message's end of DATA - time of the first's), as the sink sees them. The
same sink process serves both phases. Direct rate: ``concurrency`` processes send pre-built
messages of the same size over persistent smtplib connections. Engage rate: a worker warmed
by a first transmission (one chunk per pool process), then the measured transmission
(generation + tracking + MIME + SMTP + state + events). Also printed: POST to the last
message recorded ``sent`` (adds the API accept of all recipients and the task pick-up).
The two phases alternate for ``--rounds`` rounds (the worker idles during a direct phase),
so a load change on the machine falls on both; the targets are judged on the medians:
>= 1,000 msg/s on 2 cores, >= 70% of direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept import ROOT, bench_env  # noqa: E402

#: The stream the bench's worker writes events to (emptied after a run).
EVENT_STREAM = "engage:bench:generation"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sink(port: int, ready, clock) -> None:
    """``clock`` = shared [count, first, last] (perf_counter at each end of DATA)."""
    from aiosmtpd.smtp import SMTP

    from engage.devsink import Pipelining

    class Handler(Pipelining):  # EHLO offers PIPELINING, as production relays do
        async def handle_DATA(self, server, session, envelope):
            now = time.perf_counter()
            with clock.get_lock():
                if clock[0] == 0:
                    clock[1] = now
                clock[0] += 1
                clock[2] = now
            return "250 2.0.0 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Handler(), decode_data=False, data_size_limit=None), "127.0.0.1", port
        )
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def sink_start() -> tuple[multiprocessing.Process, int, Any]:
    """The counting sink (:func:`_sink`) in its own process: ``(process, port, clock)``."""
    port = _free_port()
    ready = multiprocessing.Event()
    clock = multiprocessing.Array("d", 3)
    sink = multiprocessing.Process(target=_sink, args=(port, ready, clock), daemon=True)
    sink.start()
    ready.wait(10)
    return sink, port, clock


def worker_start(port: int, concurrency: int) -> subprocess.Popen:
    """A real Celery worker (prefork, ``concurrency`` processes, no beat) relaying to the sink
    on ``port``, on the bench's database and Redis db (bench/accept.py ``bench_env``); its
    events go to a stream of the bench's own. Give it a few seconds to boot."""
    env = {**os.environ, "ENGAGE_RELAY_URL": f"smtp://127.0.0.1:{port}", "ENGAGE_LOG_LEVEL": "WARNING",
           "ENGAGE_EVENT_STREAM": EVENT_STREAM}  # fmt: skip
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "engage", "worker", "-l", "WARNING", "-P", "prefork",
         "-c", str(concurrency), "-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def rest_post(client: Any, content: dict, count: int) -> int:
    """POST one transmission of ``count`` recipients with ``content`` through the whole API
    stack (Django's test client with a key); returns its id."""
    body = json.dumps({
        "campaign_id": "bench", "content": content,
        "recipients": [{"address": f"user{i}@example.com", "substitution_data": {"name": f"User {i}"},
                        "metadata": {"i": i}, "tags": ["b"]} for i in range(count)],
    })  # fmt: skip
    response = client.post("/api/v1/transmissions", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    return int(response.json()["results"]["id"])


def clock_wait(clock: Any, count: int, deadline: float) -> int:
    """Wait until the sink has counted ``count`` messages or ``deadline`` (perf_counter)."""
    while time.perf_counter() < deadline and clock[0] < count:
        time.sleep(0.02)
    return int(clock[0])


def _direct_sender(port: int, count: int, data: bytes) -> None:
    conn = smtplib.SMTP("127.0.0.1", port)
    conn.ehlo()
    for i in range(count):
        conn.sendmail("bench@sender.test", [f"user{i}@example.com"], data)
    conn.quit()


def clock_reset(clock) -> None:
    with clock.get_lock():
        clock[0] = clock[1] = clock[2] = 0


def clock_rate(clock) -> tuple[int, float]:
    with clock.get_lock():
        count, first, last = int(clock[0]), clock[1], clock[2]
    return count, (count - 1) / (last - first) if count > 1 and last > first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="direct and engage phases alternate; medians are judged")
    parser.add_argument("--suppressed", type=int, default=0, help="compare N suppression entries with none (issue 14)")
    args = parser.parse_args()
    bench_env()
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    import redis
    from django.conf import settings
    from django.test import Client

    from api_keys.grants import ALL_GRANTS
    from api_keys.services import api_key_create
    from transmissions.models import Message, MessageState

    sink, port, clock = sink_start()
    content = {
        "from": "Bench <bench@sender.test>",
        "subject": "Hi {{name}}",
        "html": "<html><body><h1>Hello {{name}}</h1>" + "<p>Some paragraph text for a realistic size.</p>" * 40
        + '<a href="https://example.com/offer?u={{name}}">offer</a> <a href="https://example.com/b">b</a></body></html>',
        "text": "Hello {{name}}\n" + "Some paragraph text for a realistic size.\n" * 40 + "https://example.com/offer\n",
    }  # fmt: skip

    # 1. Direct: pre-built messages of about the size Engage produces.
    from mailcore.mime import build_message

    data = build_message(
        headers=[("From", "bench@sender.test"), ("To", "user@example.com"), ("Subject", "Hi")],
        text=content["text"] + "x" * 700,
        html=content["html"] + "x" * 1000,
    )
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # smtplib leaves bytes as they are
    assert max(len(line) for line in data.splitlines()) <= 998, "sample has an over-long line"
    per = args.messages // args.concurrency

    def direct() -> float:
        clock_reset(clock)
        senders = [
            multiprocessing.Process(target=_direct_sender, args=(port, per, data)) for _ in range(args.concurrency)
        ]
        for proc in senders:
            proc.start()
        for proc in senders:
            proc.join()
            assert proc.exitcode == 0, "a direct sender failed"
        count, rate = clock_rate(clock)
        assert count == per * args.concurrency, count
        return rate

    # 2. Engage: a real worker, POST, wait until every message is recorded sent.
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("celery", "unacked", "unacked_index")
    worker = worker_start(port, args.concurrency)
    ours: list[int] = []  # this run's transmissions, deleted at the end (the table would grow run after run)
    try:
        time.sleep(4)  # let the worker boot
        _key, raw = api_key_create(label="bench-generation", grants=list(ALL_GRANTS))
        client = Client(HTTP_AUTHORIZATION=raw)

        def post(count: int) -> int:
            return rest_post(client, content, count)

        def wait_sent(tid: int, count: int, deadline: float) -> int:
            clock_wait(clock, count, deadline)
            while time.perf_counter() < deadline:  # then the last group's state
                sent = Message.objects.filter(transmission_id=tid, state=MessageState.DELIVERED).count()
                if sent >= count:
                    return sent
                time.sleep(0.01)
            return Message.objects.filter(transmission_id=tid, state=MessageState.DELIVERED).count()

        warm = args.concurrency * settings.ENGAGE_GENERATION_CHUNK_SIZE
        clock_reset(clock)
        ours.append(post(warm))
        wait_sent(ours[-1], warm, time.perf_counter() + 120)
        if args.suppressed:
            _suppression_compare(args, post, ours, worker.pid)
            return
        rounds = []  # (direct rate, engage rate at the sink, POST -> all recorded sent)
        for _ in range(args.rounds):
            direct_rate = direct()
            clock_reset(clock)
            started = time.perf_counter()
            tid = post(args.messages)
            ours.append(tid)
            sent = wait_sent(tid, args.messages, started + 600)
            elapsed = time.perf_counter() - started
            received, engage_rate = clock_rate(clock)
            assert sent == received == args.messages, (sent, received)
            rounds.append((direct_rate, engage_rate, sent / elapsed))
    finally:
        worker.terminate()
        worker.wait(30)
        sink.terminate()
        broker.delete("celery", "unacked", "unacked_index", EVENT_STREAM)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM transmissions_message WHERE transmission_id = ANY(%s)", [ours])
            cursor.execute("DELETE FROM transmissions_transmission WHERE id = ANY(%s)", [ours])
    print(f"generation: {args.messages} messages per round, {args.concurrency} worker processes, "
          f"{len(data)} bytes/message (direct); rates timed at the sink, first to last message")  # fmt: skip
    for n, (direct_rate, engage_rate, posted) in enumerate(rounds, 1):
        print(f"  round {n}: direct smtplib {direct_rate:,.0f} msg/s | engage worker {engage_rate:,.0f} msg/s "
              f"({engage_rate / direct_rate:.0%}) | engage POST -> all sent {posted:,.0f} msg/s")  # fmt: skip
    direct_rate, engage_rate = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    ratio = statistics.median(r[1] / r[0] for r in rounds)
    print(f"  median: direct {direct_rate:,.0f} msg/s, engage {engage_rate:,.0f} msg/s, ratio {ratio:.0%}  "
          f"(targets: >= 1,000 msg/s: {'PASS' if engage_rate >= 1000 else 'FAIL'}, "
          f">= 70% of direct: {'PASS' if ratio >= 0.7 else 'FAIL'})")  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (a prefork worker's pool), from
    /proc: what the worker itself spent, whatever else the machine is running."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for process in [pid, *map(int, children)]:
        fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def _suppression_compare(args, post, ours: list[int], worker_pid: int) -> None:
    """Per round: the list with an empty suppression list, then with ``args.suppressed``
    entries among its recipients; prints both rates and their ratio (see the docstring)."""
    from django.conf import settings
    from django.db import connection

    from suppression.entries import EntryWrite
    from suppression.models import SuppressionEntry
    from suppression.services import suppression_put
    from transmissions.models import Message

    step = max(args.messages // args.suppressed, 1)
    entries = [EntryWrite(f"user{i}@example.com", "non_transactional", "bench")
               for i in range(0, args.messages, step)][: args.suppressed]  # fmt: skip

    def ended_rate(tid: int, started: float) -> tuple[float, int]:
        deadline = started + 3600
        while time.perf_counter() < deadline:
            done = Message.objects.filter(transmission_id=tid, state__in=["delivered", "bounced"]).count()
            if done >= args.messages:
                break
            time.sleep(0.5)  # a count over the list's rows: not so often that it loads the machine
        elapsed = time.perf_counter() - started
        bounced = Message.objects.filter(transmission_id=tid, state="bounced").count()
        return done / elapsed, bounced

    rounds = []
    for n in range(args.rounds):
        rates = {}
        # The order alternates (none first, then entries first, ...), so a drift in the
        # machine's load or in the tables' size falls on both sides alike.
        for with_entries in (False, True) if n % 2 == 0 else (True, False):
            SuppressionEntry.objects.all().delete()
            if with_entries:
                suppression_put(writes=entries)
            connection.close()
            load = os.getloadavg()[0]
            cpu = _cpu_seconds(worker_pid)
            started = time.perf_counter()
            tid = post(args.messages)
            ours.append(tid)
            rate, bounced = ended_rate(tid, started)
            cpu_ms = (_cpu_seconds(worker_pid) - cpu) * 1000 / args.messages
            assert bounced == (len(entries) if with_entries else 0), bounced
            rates[with_entries] = (rate, cpu_ms)
            print(f"  round {n + 1}, {'with' if with_entries else 'without'} entries: {rate:,.0f} msg/s, "
                  f"worker CPU {cpu_ms:.3f} ms/message (load average at start {load:.1f})", flush=True)  # fmt: skip
        rounds.append((rates[False], rates[True]))
    check_us = _check_cost(entries)
    SuppressionEntry.objects.all().delete()
    print(f"generation with suppression: {args.messages} messages per run, {len(entries)} of them suppressed in one of the "
          f"two runs of each round, {args.concurrency} worker processes; rate = messages ended / (POST -> last ended)")  # fmt: skip
    for n, ((none, none_cpu), (some, some_cpu)) in enumerate(rounds, 1):
        print(f"  round {n}: no entries {none:,.0f} msg/s, {none_cpu:.3f} ms CPU/msg | {len(entries)} entries "
              f"{some:,.0f} msg/s, {some_cpu:.3f} ms CPU/msg | rate {some / none:.0%}, CPU {some_cpu / none_cpu:.0%}")  # fmt: skip
    ratio = statistics.median(some[0] / none[0] for none, some in rounds)
    cpu_ratio = statistics.median(some[1] / none[1] for none, some in rounds)
    print(f"  median rate ratio {ratio:.0%} (target >= 90% of the rate without suppression: "
          f"{'PASS' if ratio >= 0.9 else 'FAIL'}); median worker CPU per message {cpu_ratio:.0%} of without")  # fmt: skip
    per_message = statistics.median(none[1] for none, _some in rounds) * 1000
    print(f"  the check alone (suppressed_among, {settings.ENGAGE_SEND_BATCH_SIZE} addresses per claimed batch, "
          f"{len(entries)} entries): {check_us:,.0f} us per batch, {check_us / settings.ENGAGE_SEND_BATCH_SIZE:.1f} us "
          f"per message = {check_us / settings.ENGAGE_SEND_BATCH_SIZE / per_message:.2%} of a message's worker CPU "
          f"without entries")  # fmt: skip


def _check_cost(entries) -> float:
    """Microseconds of one batch's suppression check, measured in this process on the
    bench database (client and server time, one round trip on loopback): the best of 5
    passes over the list's addresses in claimed-batch slices, with the entries in place."""
    from django.conf import settings

    from suppression.models import SuppressionEntry
    from suppression.selectors import suppressed_among
    from suppression.services import suppression_put

    SuppressionEntry.objects.all().delete()
    suppression_put(writes=entries)
    size = settings.ENGAGE_SEND_BATCH_SIZE
    batches = [[f"user{i}@example.com" for i in range(start, start + size)] for start in range(0, 20_000, size)]
    suppressed = {entry.recipient for entry in entries}
    expected = sum(address in suppressed for batch in batches for address in batch)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        found = sum(len(suppressed_among(addresses=batch, type="non_transactional")) for batch in batches)
        best = min(best, (time.perf_counter() - started) / len(batches))
        assert found == expected, (found, expected)
    SuppressionEntry.objects.all().delete()
    return best * 1e6


if __name__ == "__main__":
    main()
