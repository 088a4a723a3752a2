"""Durability drills of the SMTP injection listener (issue 13, Tests "Durability";
SMTP-INJECTION.md §5.11 item 9): "250 means stored".

The listener runs as ``manage.py smtp_listen`` does in production (its own process, STARTTLS
with the self-signed certificate it makes under the stack's var/), next to the drill stack's
worker with beat, private PostgreSQL and Redis and relay (tests/drills/harness.py). Every
message gets its own recipient, so what reached the relay is counted by recipient.

- The listener SIGKILLed right after a client read a 250, while another session is
  mid-send: every message that got 250 is delivered exactly once after the restart.
- PostgreSQL stopped: every message is answered 4xx (``451 4.3.0``; a new session's AUTH
  ``454 4.7.0``), never 250, and nothing of them is stored; once it is back, 250 again.
- Redis stopped: 250 all the same, and the message is delivered once Redis is back (the
  scheduler finds a transmission whose enqueue was lost a minute after its creation).
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from tests.drills.harness import PYTHON, ROOT, START_TIMEOUT, DrillError, Proc, Stack, wait_for

pytestmark = [pytest.mark.drill]

LISTENER_PORTS = (2700, 2800)  # this checkout's listener ports


def _message(rcpt: str) -> str:
    return (
        f"From: App <app@sender.example.com>\r\nTo: <{rcpt}>\r\nSubject: drill {rcpt}\r\n"
        'X-MSYS-API: {"campaign_id": "smtp-drill", "options": {"click_tracking": true}}\r\n'
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p>Hi</p><a href="https://shop.example.com/offer?to={rcpt}">Offer</a>\r\n'
    )


class SmtpListener:
    """``manage.py smtp_listen`` on a fixed loopback port, restartable; a key with ``smtp/inject``."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.port = self._port()
        self.proc = Proc("smtp", [PYTHON, "manage.py", "smtp_listen", "--host", "127.0.0.1", "--port", str(self.port)],
                         {**stack.env, "ENGAGE_SMTP_HOSTNAME": "localhost"}, stack.logdir)  # fmt: skip
        made = subprocess.run([PYTHON, "manage.py", "create_api_key", "--label", "smtp drill", "--grants", "smtp/inject"],
                              cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=START_TIMEOUT)  # fmt: skip
        if made.returncode:
            raise DrillError(f"create_api_key failed:\n{made.stderr[-3000:]}")
        self.key = made.stdout.strip().splitlines()[-1]

    @staticmethod
    def _port() -> int:
        ports = list(range(*LISTENER_PORTS))
        random.shuffle(ports)
        for port in ports:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise DrillError("no free port in 2700-2799")

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                return sock.recv(100).startswith(b"220 ")
        except OSError:
            return False

    def start(self) -> SmtpListener:
        self.proc.start()
        wait_for(lambda: self._greets() or not self.proc.running, START_TIMEOUT, f"the listener on {self.port}", 0.1)
        if not self.proc.running:
            raise DrillError(f"the listener exited at start:\n{self.proc.tail()}")
        return self

    def client(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # its self-signed certificate
        client.starttls(context=context)
        client.login("SMTP_Injection", self.key)
        return client


def send(client: smtplib.SMTP, rcpt: str) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA of one message to ``rcpt``: the reply to the final dot (or the
    first refusal)."""
    code, text = client.mail("bounce@sender.example.com")
    if code != 250:
        return code, text
    code, text = client.rcpt(rcpt)
    if code != 250:
        return code, text
    return client.data(_message(rcpt))


@pytest.fixture
def smtp(stack):
    listener = SmtpListener(stack).start()
    try:
        yield listener
    finally:
        listener.proc.kill()


def _transmissions(stack: Stack) -> dict[int, str]:
    """``transmission id -> state`` of the SMTP drill's transmissions in PostgreSQL."""
    with stack.pg.connect(stack.database) as conn:
        rows = conn.execute(
            "SELECT id, state FROM transmissions_transmission WHERE campaign_id = 'smtp-drill'"
        ).fetchall()
    return {int(tid): state for tid, state in rows}


def _assert_delivered_once(stack: Stack, accepted: dict[str, int], timeout: float = 150.0) -> None:
    """Every ``rcpt -> transmission id`` in ``accepted`` reaches the relay, and each of those
    transmissions has exactly one ``injection`` and one ``delivery`` event."""

    def at_relay() -> set[str]:
        return {received.rcpt_tos[0] for received in stack.relay.received}

    wait_for(lambda: set(accepted) <= at_relay(), timeout,
             lambda: f"{len(set(accepted) - at_relay())} of {len(accepted)} accepted messages at the relay")  # fmt: skip
    stack.settle(lambda counts: counts["delivery"] >= len(accepted), quiet=2.0, timeout=60)
    twice = {}
    for rcpt, tid in accepted.items():
        injections = stack.per_message("injection", str(tid)).total()
        deliveries = stack.per_message("delivery", str(tid)).total()
        if (injections, deliveries) != (1, 1):
            twice[rcpt] = (injections, deliveries)
    copies = [received.rcpt_tos[0] for received in stack.relay.received if received.rcpt_tos[0] in accepted]
    assert not twice, f"(injection, delivery) events per accepted message other than (1, 1): {twice}"
    assert len(copies) == len(set(copies)), f"relayed more than once: {len(copies) - len(set(copies))} copies"


def _tid(text: bytes) -> int:
    decoded = text.decode()
    assert decoded.startswith("2.0.0 OK "), decoded
    return int(decoded.rsplit(" ", 1)[1])


def test_listener_sigkilled_right_after_a_250_every_accepted_message_is_delivered_after_restart(stack, smtp):
    """One session sends until its 20th 250, then the listener is SIGKILLed at once, while a
    second session keeps sending (its message in flight gets no 250, or a 250 that counts).
    After the restart every message that got 250 is delivered exactly once."""
    accepted: dict[str, int] = {}
    stop = threading.Event()

    def background() -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client = smtp.client()
            for n in range(10_000):
                if stop.is_set():
                    break
                rcpt = f"bg{n}@example.com"
                code, text = send(client, rcpt)
                if code == 250:
                    accepted[rcpt] = _tid(text)

    other = threading.Thread(target=background, daemon=True)
    other.start()
    client = smtp.client()
    for n in range(20):
        code, text = send(client, f"fg{n}@example.com")
        assert code == 250, (code, text)
        accepted[f"fg{n}@example.com"] = _tid(text)
    smtp.proc.signal_group(9)  # SIGKILL, the moment the 20th 250 was read
    stop.set()
    other.join(30)
    smtp.proc.proc.wait(20)
    with contextlib.suppress(Exception):
        client.close()
    smtp.start()
    client = smtp.client()
    for n in range(5):
        code, text = send(client, f"after{n}@example.com")
        assert code == 250, (code, text)
        accepted[f"after{n}@example.com"] = _tid(text)
    client.quit()
    assert any(rcpt.startswith("bg") for rcpt in accepted), "the second session sent nothing"
    _assert_delivered_once(stack, accepted)


def test_postgres_stopped_is_4xx_never_250_and_nothing_is_stored_then_250_once_it_is_back(stack, smtp):
    client = smtp.client()  # authenticated while PostgreSQL is up
    code, text = send(client, "before@example.com")
    assert code == 250, (code, text)
    accepted = {"before@example.com": _tid(text)}
    stack.pg.stop("fast")
    try:
        replies = [send(client, f"down{n}@example.com") for n in range(5)]
        fresh = smtplib.SMTP("127.0.0.1", smtp.port, timeout=30)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        fresh.starttls(context=context)
        fresh.ehlo("drill.example.com")
        auth = fresh.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0SMTP_Injection\0{smtp.key}".encode()).decode())
        fresh.close()
    finally:
        stack.pg.start()
    assert all(code == 451 and text == b"4.3.0 Temporary failure, please retry" for code, text in replies), replies
    assert auth == (454, b"4.7.0 Temporary authentication failure"), auth
    # Back: the first attempt may meet the pool's dead connection (451, never 250 for a lost one).
    for _attempt in range(10):
        code, text = send(client, "back@example.com")
        if code == 250:
            accepted["back@example.com"] = _tid(text)
            break
        assert code == 451, (code, text)
        time.sleep(1)
    else:
        raise AssertionError("no 250 within 10 attempts after PostgreSQL came back")
    client.quit()
    assert set(_transmissions(stack)) == set(accepted.values()), "a message answered 4xx was stored"
    _assert_delivered_once(stack, accepted)


def test_redis_stopped_still_250_and_delivered_once_redis_is_back(stack, smtp):
    client = smtp.client()
    stack.redis.shutdown()
    try:
        began = time.monotonic()
        code, text = send(client, "redisdown@example.com")
        took = time.monotonic() - began
    finally:
        stack.redis.start()
    client.quit()
    assert code == 250, (code, text)
    accepted = {"redisdown@example.com": _tid(text)}
    print(f"250 with Redis down after {took:.2f} s")  # shown with -s or -rP
    # The lost enqueue is found by the scheduler a minute after the transmission's creation.
    _assert_delivered_once(stack, accepted, timeout=150.0)


def _store_backend(stack) -> int:
    with stack.pg.connect(stack.database) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query LIKE %s AND pid <> pg_backend_pid()",
            (stack.database, "%WITH ids AS MATERIALIZED%"),
        ).fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0])


def test_a_frozen_store_backend_costs_its_group_a_451_and_the_next_message_is_stored(stack, smtp):
    """The SMTP listener's store backend frozen (SIGSTOP) under a group, on the drill stack's
    private PostgreSQL (tests/drills/harness.py), the listener as in production (``manage.py
    smtp_listen``, store_timeout 30 s).

    At a75c2e7 the frozen group's session got no reply in 60 s and a second session's message
    none in 20 s (the store wedged on psycopg's cancellation, which waits for the frozen
    backend with no limit); 080db60 answers 451 after 32 s and stores the next message at once.
    Once resumed (SIGCONT), the backend reads the group's statement still in its socket buffer
    (PostgreSQL ignores a cancel while it reads a command; a shutdown of the client's socket
    does not take back bytes already sent): the statement carries a deadline in the server's
    clock and, begun after it, stores nothing, so no message answered 451 is stored (and sent
    while its client sends it again)."""
    client = smtp.client()
    code, text = send(client, "before@example.com")
    assert code == 250, (code, text)
    accepted = {_tid(text)}
    pid = _store_backend(stack)
    os.kill(pid, signal.SIGSTOP)
    result: dict[str, object] = {}
    try:

        def frozen() -> None:
            began = time.monotonic()
            try:
                result["reply"] = send(client, "frozen@example.com")
            except Exception as error:  # noqa: BLE001 - reported below
                result["reply"] = repr(error)
            result["took"] = time.monotonic() - began

        client.sock.settimeout(60)
        sender = threading.Thread(target=frozen, daemon=True)
        sender.start()
        sender.join(55)
        other = smtp.client()
        other.sock.settimeout(20)
        began = time.monotonic()
        try:
            after = send(other, "after@example.com")
        except Exception as error:  # noqa: BLE001
            after = repr(error)
        after_took = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(3)
    stored = _transmissions(stack)
    print(f"frozen: {result} / after: {after} in {after_took:.1f} s / stored {sorted(stored)}")
    assert isinstance(result.get("reply"), tuple) and result["reply"][0] == 451, result
    assert isinstance(after, tuple) and after[0] == 250 and after_took < 5, (after, after_took)
    accepted.add(_tid(after[1]))
    # Nothing answered 451 may be stored (it is sent again by the client).
    assert set(stored) == accepted, f"stored {sorted(stored)}, answered 250 {sorted(accepted)}"
