"""SMTP injection benchmark (issue 13, "Benchmark"; SMTP-INJECTION.md §5.12): Engage's listener
with durable acceptance against the same library's server (aiosmtpd) that accepts and
discards, side by side in one run.

    .venv/bin/python bench/smtp_injection.py [--sessions 10] [--messages 100] [--size 10240]
                                             [--rounds 3] [--threads 16] [--no-pipelining]

Both servers run in their own process for the whole run, with the same throwaway certificate,
STARTTLS required and AUTH PLAIN required after it; the discard server's authenticator says
yes to anything and its handler answers ``250 2.0.0 OK`` without storing. Engage's listener is
``smtp_injection.server.Listener`` as ``manage.py smtp_listen`` builds it, with a key holding
``smtp/inject``: its 250 comes after the transmission, the raw message and the message row are
committed in PostgreSQL (the database ``engage_bench_tx`` and Redis db 14 as in
bench/accept.py: no worker takes the queued generation, and the queue is emptied after).

After a warm-up of 40 messages per server (not counted), each round sends to each server in turn (which goes first alternates): ``--sessions`` client
processes, each one connection with STARTTLS and AUTH once, then ``--messages`` messages of
``--size`` bytes (one recipient, a small ``X-MSYS-API``), pipelined as an MTA sends them
(RFC 2920; ``--no-pipelining``: one command per round trip, as smtplib). Figures per server: messages/s
(all messages over the wall time from the start signal to the last 250), the server process's
CPU per message (utime + stime from /proc, all its threads), and the p50/p99 from the final
dot (the DATA payload handed to the socket) to the 250. The verdict takes the medians over
rounds: >= 50 % of accept-and-discard, >= 400 msg/s, p99 <= 100 ms.

Then, unless ``--end-to-end 0``, SMTP-in to relay-out end to end against the REST path's
generation rate in the same run (:func:`_end_to_end`, with bench/generation.py's sink, worker
and REST POST), ``--rounds`` alternating rounds; target: >= 80 % of the REST rate (medians).
Each side also prints its CPU per message by process (worker, sink, PostgreSQL, listener,
clients, ...: :func:`_cpu_by_kind`), from the clients' start signal on the SMTP side.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import smtplib
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept import ROOT, bench_env, bench_vacuum, cpu_seconds  # noqa: E402
from generation import (  # noqa: E402
    EVENT_STREAM,
    clock_rate,
    clock_reset,
    clock_wait,
    rest_post,
    sink_start,
    worker_start,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_HEAD = (
    "From: Bench <app@sender.example.com>\r\nTo: <jo@example.com>\r\nSubject: Your invoice\r\n"
    'X-MSYS-API: {"campaign_id": "bench-smtp", "metadata": {"customer": "42"}, "tags": ["bench"], '
    '"options": {"click_tracking": true, "open_tracking": true}}\r\n'
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
)


def _tree_cpu(pid: int) -> float:
    """:func:`accept.cpu_seconds` of process ``pid`` and all its descendants (a prefork worker)."""
    total = 0.0
    for current in _tree_pids(pid):
        try:
            total += cpu_seconds(current)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _cpu_by_kind(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of every process on the machine, summed by kind: each name in
    ``pids`` for that process and its descendants (``"bench"``, this process, alone: its
    forked clients and servers are counted apart), ``"postgres"`` and ``"redis"`` by command
    name, ``"other"`` the rest (proc(5)). A PostgreSQL backend that ended counts in the
    postmaster's reaped CPU (``cutime`` + ``cstime``): one ended mid-side (a connection
    closed) made the ``"postgres"`` figure negative. Other processes that ended are not
    counted (a side's worker, reaped by this process during the next side, would count twice)."""
    mine = {pid: name for name, root in pids.items() if name != "bench" for pid in _tree_pids(root)}
    mine |= {pids["bench"]: "bench"} if "bench" in pids else {}
    totals = dict.fromkeys([*pids, "postgres", "redis", "other"], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            comm = (entry / "comm").read_text()
            seconds = cpu_seconds(pid, reaped=comm.startswith("postgres"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        kind = mine.get(pid) or (
            "postgres" if comm.startswith("postgres") else "redis" if comm.startswith("redis") else "other"
        )
        totals[kind] += seconds
    return totals


def _tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _html(size: int) -> str:
    line = '<p>Line of the invoice <a href="https://shop.example.com/item?id=12345">item</a></p>\r\n'
    body = line * max(1, (size - len(_HEAD) - 34) // len(line))
    return "<html><body>\r\n" + body + "</body></html>\r\n"


def _message(size: int) -> bytes:
    return (_HEAD + _html(size)).encode()


def _rest_content(size: int) -> dict:
    """The REST twin of :func:`_message`: the same sender, subject and HTML, tracked the same."""
    return {"from": "Bench <app@sender.example.com>", "subject": "Your invoice", "html": _html(size)}


def _tls(directory: Path) -> ssl.SSLContext:
    from smtp_injection.tls import self_signed_pair, tls_context

    cert, key = self_signed_pair(directory, hostname="localhost")
    return tls_context(cert, key)


def _serve_engage(port: int, tls_dir: str, threads: int, ready) -> None:
    """Engage's listener (as ``manage.py smtp_listen`` configures it) in this process."""
    logging.disable(logging.WARNING)
    from django.conf import settings

    from smtp_injection.server import Listener, ListenerConfig

    config = ListenerConfig(
        hostname="localhost", tls_context=_tls(Path(tls_dir)), plaintext_auth=False,
        max_message_size=settings.ENGAGE_SMTP_MAX_MESSAGE_SIZE, max_line_length=settings.ENGAGE_SMTP_MAX_LINE_LENGTH,
        max_rcpts=settings.ENGAGE_SMTP_MAX_RCPTS, max_connections=settings.ENGAGE_SMTP_MAX_CONNECTIONS,
        max_connections_per_key=settings.ENGAGE_SMTP_MAX_CONNECTIONS_PER_KEY, timeout=settings.ENGAGE_SMTP_TIMEOUT,
        auth_attempts=settings.ENGAGE_SMTP_AUTH_ATTEMPTS, shutdown_grace=5, threads=threads,
    )  # fmt: skip

    async def serve() -> None:
        listener = Listener(config)
        await listener.start("127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(serve())


def _serve_discard(port: int, tls_dir: str, ready) -> None:
    """aiosmtpd with the same TLS, AUTH and size settings, accepting and discarding."""
    logging.disable(logging.WARNING)
    from aiosmtpd.smtp import SMTP, AuthResult

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 OK"

    context = _tls(Path(tls_dir))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="localhost", tls_context=context, require_starttls=True,
                         auth_required=True, auth_require_tls=True, decode_data=False, enable_SMTPUTF8=True,
                         authenticator=lambda *args: AuthResult(success=True),
                         data_size_limit=20 * 1024 * 1024, command_call_limit={"*": 10_000_000}),
            "127.0.0.1", port,
        )  # fmt: skip
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _client(port: int, key: str, count: int, data: bytes, go, results, pipelining: bool = True) -> None:
    """One session: STARTTLS and AUTH once (smtplib), then ``count`` messages; puts
    ``(latencies, error, the process's CPU seconds from the start signal)``.

    With ``pipelining`` the messages go as an MTA sends them under PIPELINING (RFC 2920
    §3.1): the payload and final dot, then the next message's MAIL, RCPT and DATA, in one
    write, and the replies read after it; without, smtplib's one command per round trip.
    Latency is from that write to the dot's reply. (Plain aiosmtpd, the discard server, reads
    pipelined commands though it does not advertise PIPELINING.)"""
    latencies: list[float] = []
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # the throwaway certificate: nothing to verify
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        payload = data + b".\r\n"  # already dot-safe: no line starts with "."
        go.wait()
        cpu = time.process_time()
        client = smtplib.SMTP("127.0.0.1", port, timeout=60)
        client.starttls(context=context)
        client.login("SMTP_Injection", key)
        if pipelining:
            envelope = [b"MAIL FROM:<bounce@sender.example.com>\r\n" + f"RCPT TO:<user{n}@example.com>\r\n".encode()
                        + b"DATA\r\n" for n in range(count)]  # fmt: skip
            client.send(envelope[0])
            assert [client.getreply()[0] for _ in range(3)] == [250, 250, 354]
            for n in range(count):
                client.send(payload + (envelope[n + 1] if n + 1 < count else b""))
                sent = time.perf_counter()
                code, text = client.getreply()
                latencies.append(time.perf_counter() - sent)
                assert code == 250, (code, text)
                if n + 1 < count:
                    assert [client.getreply()[0] for _ in range(3)] == [250, 250, 354]
        else:
            for n in range(count):
                assert client.mail("bounce@sender.example.com")[0] == 250
                assert client.rcpt(f"user{n}@example.com")[0] == 250
                assert client.docmd("DATA")[0] == 354
                client.send(payload)
                sent = time.perf_counter()
                code, text = client.getreply()
                latencies.append(time.perf_counter() - sent)
                assert code == 250, (code, text)
        client.quit()
        results.put((latencies, None, time.process_time() - cpu))
    except Exception as exc:  # reported by the parent
        results.put((latencies, repr(exc), 0.0))


def _round(server_pid: int, port: int, key: str, args, data: bytes, at_go=None) -> dict[str, float]:
    """One round against the server on ``port`` (process ``server_pid``); ``at_go``, if given,
    is called just before the clients are let go (after they are forked)."""
    context = multiprocessing.get_context("fork")
    go, results = context.Event(), context.Queue()
    clients = [context.Process(target=_client, args=(port, key, args.messages, data, go, results, args.pipelining))
               for _ in range(args.sessions)]  # fmt: skip
    for process in clients:
        process.start()
    time.sleep(0.5)
    if at_go:
        at_go()
    cpu = cpu_seconds(server_pid)
    started = time.perf_counter()
    go.set()
    latencies: list[float] = []
    errors = []
    clients_cpu = 0.0
    for _ in clients:
        got, error, spent = results.get(timeout=600)
        latencies += got
        clients_cpu += spent
        if error:
            errors.append(error)
    ended = time.perf_counter()
    elapsed = ended - started
    cpu = cpu_seconds(server_pid) - cpu
    for process in clients:
        process.join(30)
    if errors:
        raise SystemExit(f"client errors: {errors[:3]}")
    latencies.sort()
    messages = len(latencies)
    return {
        "started": started,
        "ended": ended,
        "rate": messages / elapsed,
        "cpu_ms": cpu * 1000 / messages,
        "clients_cpu": clients_cpu,
        "p50_ms": latencies[messages // 2] * 1000,
        "p99_ms": latencies[min(messages - 1, int(messages * 0.99))] * 1000,
    }


def _machine_busy():
    """Start measuring how busy the machine's CPUs are (all processes, /proc/stat); the
    returned function gives the busy fraction since (0-1: 1 means every core was busy)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # minus idle and iowait

    busy, total = read()

    def since() -> float:
        now_busy, now_total = read()
        return (now_busy - busy) / max(1, now_total - total)

    return since


def _end_to_end(args, engage_pid: int, engage_port: int, key: str, data: bytes) -> list[dict[str, float]]:
    """SMTP-in → relay-out against the REST path's generation rate (issue 13, "Benchmark"),
    with bench/generation.py's sink, worker and REST POST: one real Celery worker
    (``--concurrency`` processes) relays to the counting sink, which is the clock of both.
    Each round (the side that goes first alternates): REST, one transmission of N recipients
    with the SMTP message's sender, subject and HTML, tracked the same, posted through the
    API, its rate the sink's first to last message (bench/generation.py's "engage worker"
    rate); SMTP, N messages injected by ``--sessions`` sessions into the listener, its rate N
    over the time from the clients' start to the last message at the sink (acceptance,
    generation and relay, one transmission per message). Returns per round
    ``{"rest": msg/s, "smtp": msg/s, "smtp_sink": the SMTP side's first-to-last rate, "accepted": the
    clients' rate (start to last 250), "rest_cpu_ms" / "smtp_cpu_ms": the worker's CPU per message
    (all its processes, /proc), "rest_busy" / "smtp_busy": how busy the machine's cores were
    during each side (:func:`_machine_busy`, 0-1)}``."""
    import redis
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from api_keys.grants import ALL_GRANTS
    from api_keys.services import api_key_create

    redis.Redis.from_url(settings.REDIS_URL).delete("celery", "unacked", "unacked_index")  # the rounds' generation
    sink, sink_port, clock = sink_start()
    worker = worker_start(sink_port, args.concurrency)
    _key, raw = api_key_create(label="bench-smtp-rest", grants=list(ALL_GRANTS))
    client = Client(HTTP_AUTHORIZATION=raw)
    content = _rest_content(args.size)
    count = args.end_to_end
    per_session = argparse.Namespace(
        sessions=args.sessions, messages=max(1, count // args.sessions), pipelining=args.pipelining
    )
    count = per_session.sessions * per_session.messages
    found: list[dict[str, float]] = []

    kinds = {"bench": os.getpid(), "listener": engage_pid, "worker": worker.pid, "sink": sink.pid}

    def spent(before: dict[str, float]) -> dict[str, float]:
        """CPU ms per message by kind since ``before`` (:func:`_cpu_by_kind`)."""
        return {kind: (seconds - before[kind]) * 1000 / count for kind, seconds in _cpu_by_kind(kinds).items()}

    def rest() -> tuple[float, float, float, dict[str, float]]:
        bench_vacuum()
        busy, before = _machine_busy(), _cpu_by_kind(kinds)
        clock_reset(clock)
        cpu = _tree_cpu(worker.pid)
        rest_post(client, content, count)
        assert clock_wait(clock, count, time.perf_counter() + 600) >= count, "REST: not every message reached the sink"
        return clock_rate(clock)[1], (_tree_cpu(worker.pid) - cpu) * 1000 / count, busy(), spent(before)

    def smtp() -> tuple[float, float, float, float, float, dict[str, float]]:
        meters = {}

        def at_go() -> None:  # from the clients' start, not their fork and handshake
            meters.update(busy=_machine_busy(), before=_cpu_by_kind(kinds), worker=_tree_cpu(worker.pid))

        bench_vacuum()
        clock_reset(clock)
        connections.close_all()  # the clients are forked
        found = _round(engage_pid, engage_port, key, per_session, data, at_go)
        started = found["started"]
        assert clock_wait(clock, count, time.perf_counter() + 600) >= count, "SMTP: not every message reached the sink"
        worker_ms = (_tree_cpu(worker.pid) - meters["worker"]) * 1000 / count
        busy, where = meters["busy"](), spent(meters["before"])
        where["clients"] = found["clients_cpu"] * 1000 / count
        rate = count / (clock[2] - started)
        return rate, clock_rate(clock)[1], count / (found["ended"] - started), worker_ms, busy, where

    try:
        time.sleep(4)  # the worker boots
        clock_reset(clock)  # warm: the worker's processes, the listener's sessions
        rest_post(client, content, 2 * args.concurrency)
        _round(
            engage_pid, engage_port, key, argparse.Namespace(sessions=2, messages=10, pipelining=args.pipelining), data
        )
        clock_wait(clock, 2 * args.concurrency + 20, time.perf_counter() + 120)
        for number in range(args.rounds if args.end_to_end_rounds is None else args.end_to_end_rounds):
            if number % 2 == 0:
                rest_rate, rest_cpu, rest_busy, rest_where = rest()
                smtp_rate, smtp_sink, accepted, smtp_cpu, smtp_busy, smtp_where = smtp()
            else:
                smtp_rate, smtp_sink, accepted, smtp_cpu, smtp_busy, smtp_where = smtp()
                rest_rate, rest_cpu, rest_busy, rest_where = rest()
            found.append({"rest": rest_rate, "smtp": smtp_rate, "smtp_sink": smtp_sink, "accepted": accepted,
                          "rest_cpu_ms": rest_cpu, "smtp_cpu_ms": smtp_cpu, "rest_busy": rest_busy,
                          "smtp_busy": smtp_busy, "rest_where": rest_where, "smtp_where": smtp_where})  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(30)
        sink.terminate()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=10, help="client sessions (processes), default 10")
    parser.add_argument("--messages", type=int, default=100, help="messages per session, default 100")
    parser.add_argument("--size", type=int, default=10240, help="message size in bytes, default 10240")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, default 3")
    parser.add_argument(
        "--end-to-end-rounds", type=int, default=None, metavar="N",
        help="rounds of the end-to-end comparison, default --rounds (0 listener rounds: --rounds 0)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=16, help="the listener's database threads, default 16")
    parser.add_argument(
        "--end-to-end",
        type=int,
        default=1000,
        metavar="N",
        help="messages per side of the end-to-end comparison (0: leave it out), default 1000",
    )
    parser.add_argument(
        "--no-pipelining",
        dest="pipelining",
        action="store_false",
        help="clients send one command per round trip (smtplib) instead of pipelining (RFC 2920)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="the end-to-end worker's processes, default 2")
    args = parser.parse_args()

    os.chdir(ROOT)
    os.environ.setdefault("ENGAGE_LOG_LEVEL", "WARNING")
    bench_env()
    import redis
    from django.conf import settings
    from django.db import connection, connections

    from api_keys.services import api_key_create

    _key, key = api_key_create(label="bench-smtp", grants=["smtp/inject"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM transmissions_transmission")
        (before,) = cursor.fetchone()
    connections.close_all()  # the servers and clients are forked: no shared connection

    data = _message(args.size)
    context = multiprocessing.get_context("fork")
    tls_dir = tempfile.mkdtemp(prefix="engage-bench-smtp-")
    ports = {"engage": _free_port(), "discard": _free_port()}
    ready = {name: context.Event() for name in ports}
    servers = {
        "engage": context.Process(target=_serve_engage, args=(ports["engage"], tls_dir, args.threads, ready["engage"])),
        "discard": context.Process(target=_serve_discard, args=(ports["discard"], tls_dir, ready["discard"])),
    }
    rounds: list[dict[str, dict[str, float]]] = []
    end_to_end: list[dict[str, float]] = []
    try:
        for name, process in servers.items():
            process.start()
            assert ready[name].wait(60), f"the {name} server did not start"
        warm = argparse.Namespace(
            sessions=2, messages=20, pipelining=args.pipelining
        )  # connections, threads' database connections
        for name in servers:
            _round(servers[name].pid, ports[name], key, warm, data)
        for number in range(args.rounds):
            order = ("engage", "discard") if number % 2 == 0 else ("discard", "engage")
            found = {}
            for name in order:
                bench_vacuum()
                found[name] = _round(servers[name].pid, ports[name], key, args, data)
            rounds.append(found)
        if args.end_to_end:
            servers["discard"].terminate()  # not needed now: its CPU is the worker's
            end_to_end = _end_to_end(args, servers["engage"].pid, ports["engage"], key, data)
    finally:
        for process in servers.values():
            process.terminate()
            process.join(10)
        broker = redis.Redis.from_url(settings.REDIS_URL)
        broker.delete("celery", "unacked", "unacked_index", EVENT_STREAM)
        with connection.cursor() as cursor:  # this run's rows (the table would grow run after run)
            cursor.execute("DELETE FROM transmissions_message WHERE transmission_id > %s", [before])
            cursor.execute("DELETE FROM transmissions_transmission WHERE id > %s", [before])
    total = args.sessions * args.messages
    print(f"smtp injection: {args.sessions} sessions x {args.messages} messages of {len(data):,} bytes, one RCPT, "
          f"STARTTLS + AUTH PLAIN once per session; {args.threads} listener threads; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for number, found in enumerate(rounds, 1):  # none with --rounds 0
        engage, discard = found["engage"], found["discard"]
        print(f"  round {number}: engage {engage['rate']:,.0f} msg/s, {engage['cpu_ms']:.2f} ms CPU/msg, "
              f"p50 {engage['p50_ms']:.1f} ms, p99 {engage['p99_ms']:.1f} ms | discard {discard['rate']:,.0f} msg/s, "
              f"{discard['cpu_ms']:.2f} ms CPU/msg, p99 {discard['p99_ms']:.1f} ms | "
              f"ratio {engage['rate'] / discard['rate']:.0%}")  # fmt: skip

    def median(name: str, figure: str) -> float:
        return statistics.median(found[name][figure] for found in rounds)

    if not rounds:
        _end_to_end_print(args, end_to_end)
        return

    rate, p99 = median("engage", "rate"), median("engage", "p99_ms")
    ratio = statistics.median(found["engage"]["rate"] / found["discard"]["rate"] for found in rounds)
    print(f"  median of {len(rounds)} rounds ({total} messages each): engage {rate:,.0f} msg/s, "
          f"{median('engage', 'cpu_ms'):.2f} ms listener CPU/msg, p99 {p99:.1f} ms; accept-and-discard "
          f"{median('discard', 'rate'):,.0f} msg/s, {median('discard', 'cpu_ms'):.2f} ms CPU/msg; ratio {ratio:.0%}")  # fmt: skip
    print(f"  targets: >= 50% of accept-and-discard: {'PASS' if ratio >= 0.5 else 'FAIL'}; "
          f">= 400 msg/s: {'PASS' if rate >= 400 else 'FAIL'}; p99 <= 100 ms: {'PASS' if p99 <= 100 else 'FAIL'}")  # fmt: skip
    _end_to_end_print(args, end_to_end)


def _end_to_end_print(args, end_to_end: list[dict[str, float]]) -> None:
    if not end_to_end:
        return
    print(f"end to end: {args.sessions * max(1, args.end_to_end // args.sessions)} messages per side, a Celery worker "
          f"of {args.concurrency} processes relaying to a counting sink; REST = one transmission of that many "
          f"recipients (sink rate, first to last message); SMTP = one message per transmission (clients' start to the "
          f"last message at the sink)")  # fmt: skip
    for number, found in enumerate(end_to_end, 1):
        print(f"  round {number}: REST generation {found['rest']:,.0f} msg/s, worker {found['rest_cpu_ms']:.2f} ms "
              f"CPU/msg | SMTP in -> relay out {found['smtp']:,.0f} msg/s (sink first to last "
              f"{found['smtp_sink']:,.0f}, accepted {found['accepted']:,.0f}), worker {found['smtp_cpu_ms']:.2f} ms "
              f"CPU/msg | ratio {found['smtp'] / found['rest']:.0%} | machine busy: REST {found['rest_busy']:.0%}, "
              f"SMTP {found['smtp_busy']:.0%}")  # fmt: skip
        for side in ("rest", "smtp"):
            where = found[f"{side}_where"]
            print(f"    {side.upper()} CPU ms/msg: " + ", ".join(f"{kind} {ms:.2f}" for kind, ms in where.items())
                  + f"; total {sum(where.values()):.2f}")  # fmt: skip
    e2e = statistics.median(found["smtp"] / found["rest"] for found in end_to_end)
    print(f"  median: REST {statistics.median(f['rest'] for f in end_to_end):,.0f} msg/s, SMTP "
          f"{statistics.median(f['smtp'] for f in end_to_end):,.0f} msg/s, ratio {e2e:.0%} "
          f"(target >= 80% of the REST generation rate: {'PASS' if e2e >= 0.8 else 'FAIL'})")  # fmt: skip


if __name__ == "__main__":
    main()
