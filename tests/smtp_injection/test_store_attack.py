"""Attacks on the group store of commit a75c2e7 (the store on the loop, on its own asyncio
connection, transmissions as one JSON array): hostile content that might break the JSON
path (refused 5xx before the store, or stored), a lock held past the store timeout, and a
database connection that goes dead without RST."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from tests.smtp_injection.helpers import inject, inject_raw, login, message, transmission_id
from transmissions.models import Transmission
from transmissions.services import transmissions_store_connect, transmissions_store_params

HOSTILE = {
    "nul-in-metadata": message('{"metadata":{"a":"x\\u0000y"}}').encode(),
    "nul-in-metadata-key": message('{"metadata":{"x\\u0000":"y"}}').encode(),
    "lone-surrogate-in-metadata": message('{"metadata":{"a":"\\ud800"}}').encode(),
    "nul-in-body": message().replace("Hello", "He\x00llo").encode(),
    "nul-in-subject": message().replace("Your invoice", "Your\x00invoice").encode(),
    "invalid-utf8-in-body": message().encode().replace(b"Hello", b"He\xff\xfello"),
    "invalid-utf8-in-subject": message().encode().replace(b"Your invoice", b"Your \xff invoice"),
    "nul-in-campaign": message('{"campaign_id":"a\\u0000b"}').encode(),
    "surrogate-in-campaign": message('{"campaign_id":"a\\udc80b"}').encode(),
    "nul-in-substitution": message('{"substitution_data":{"a":"\\u0000"}}').encode(),
    "start-time-odd": message('{"options":{"start_time":"0001-01-01T00:00:00+14:00"}}').encode(),
    "start-time-far": message('{"options":{"start_time":"9999-12-31T23:59:59-12:00"}}').encode(),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_message_alone(start_listener, smtp_key, name):
    """Refused (5xx) before the store or stored (250 with its row); never 451, and the
    listener stores the next plain message."""
    listener = start_listener()
    client = listener.client()
    login(client, smtp_key)
    code, reply = inject_raw(client, ["jo@example.com"], HOSTILE[name])
    assert code != 250 or Transmission.objects.filter(pk=transmission_id(reply)).exists()
    # the listener still stores a plain message afterwards
    code2, reply2 = inject(client, ["jo@example.com"], message())
    assert code2 == 250, (name, code, reply, code2, reply2)
    assert code in (250,) or 500 <= code < 600, (name, code, reply)


class BlackHoleProxy:
    """A TCP proxy to the test database. :meth:`partition` black-holes every connection open
    at that moment, both ways and for good, with no RST or FIN (the database host froze or
    vanished: SIGSTOP, a hung VM, a failover to another host, a firewall dropping the old
    flows); connections made after it pass (the database is back)."""

    def __init__(self, host: str, port: int) -> None:
        import socket

        self.upstream = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.pairs: list[dict] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            pair = {"sockets": (client, upstream), "dead": False}
            self.pairs.append(pair)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, target), daemon=True).start()

    @staticmethod
    def _pump(pair, source, target) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                if not pair["dead"]:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                return
            if pair["dead"]:
                continue  # swallowed: the peer never hears of it
            try:
                target.sendall(data)
            except OSError:
                return

    def partition(self) -> None:
        for pair in self.pairs:
            pair["dead"] = True

    def close(self) -> None:
        self.server.close()
        for pair in self.pairs:
            for sock in pair["sockets"]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked recv holding it
                sock.close()


@pytest.fixture
def proxied_store(monkeypatch):
    """The listener's store connections go through a :class:`BlackHoleProxy`."""
    from django.db import connection

    params = connection.get_connection_params()
    proxy = BlackHoleProxy(params.get("host") or "127.0.0.1", int(params.get("port") or 5432))

    async def connect():
        return await transmissions_store_connect(host="127.0.0.1", port=proxy.port, connect_timeout=2)

    monkeypatch.setattr("smtp_injection.services.transmissions_store_connect", connect)
    yield proxy
    proxy.close()
    import time

    time.sleep(0.5)  # the backends behind the proxy see the end before the test database goes


def _timed_inject(client, rcpt: str, limit: float):
    import smtplib
    import time

    client.sock.settimeout(limit)
    started = time.monotonic()
    try:
        code, reply = inject(client, [rcpt], message())
    except (TimeoutError, smtplib.SMTPServerDisconnected) as error:
        code, reply = None, repr(error).encode()
    return code, reply, time.monotonic() - started


def test_a_vanished_database_connection_costs_its_group_a_451_and_not_the_listener(
    start_listener, smtp_key, proxied_store
):
    """The store's connection goes dead in the middle of a group with no RST (the database
    host froze or failed over); the database is reachable again at once for new
    connections. The promise (``ListenerConfig.store_timeout``, :class:`GroupStore`): that
    group's sessions get ``451 4.3.0`` after about ``store_timeout`` seconds, and the next
    group is stored on a new connection (250).

    What happened at a75c2e7: ``asyncio.timeout`` cancels the statement, psycopg catches the
    cancellation (``AsyncConnection.wait``), sends a cancel request (5 s, which cannot reach
    the dead server process) and then waits, with no time limit, for the statement's result
    on the dead connection. The group's session never gets a reply, and since the store's one
    connection never comes back to ``idle``, every later message waits as well: the listener
    takes DATA and answers nothing, with the database up (until TCP keepalive gives up on
    the connection, two hours by default), and its shutdown waits for that group for ever."""
    listener = start_listener(store_timeout=1.0)
    client = listener.client()
    login(client, smtp_key)
    assert inject(client, ["before@example.com"], message())[0] == 250  # the store connection is up

    proxied_store.partition()
    code, reply, elapsed = _timed_inject(client, "lost@example.com", 15)
    assert code == 451 and elapsed < 10, (code, reply, elapsed)
    assert not Transmission.objects.filter(messages__email="lost@example.com").exists()

    other = listener.client()
    login(other, smtp_key)
    code, reply, elapsed = _timed_inject(other, "after@example.com", 10)
    assert code == 250 and elapsed < 5, (code, reply, elapsed)
    assert Transmission.objects.filter(pk=transmission_id(reply)).exists()


def test_a_locked_table_answers_451_after_the_store_timeout_and_nothing_is_stored_later(
    start_listener, smtp_key, transactional_db
):
    """``LOCK TABLE transmissions_transmission IN ACCESS EXCLUSIVE MODE`` held past
    ``store_timeout``: 451, and when the lock goes, the statement must not commit behind the
    client's back (it was cancelled on the server); the next message is stored."""
    import psycopg

    listener = start_listener(store_timeout=1.0)
    client = listener.client()
    login(client, smtp_key)
    assert inject(client, ["before@example.com"], message())[0] == 250
    params = transmissions_store_params()
    with psycopg.connect(**params) as locker:
        locker.execute("LOCK TABLE transmissions_transmission IN ACCESS EXCLUSIVE MODE")
        code, reply, elapsed = _timed_inject(client, "locked@example.com", 15)
        assert code == 451 and elapsed < 8, (code, reply, elapsed)
    import time

    time.sleep(1)
    assert not Transmission.objects.filter(messages__email="locked@example.com").exists()
    code, reply, elapsed = _timed_inject(client, "after@example.com", 10)
    assert code == 250 and elapsed < 5, (code, reply, elapsed)


def test_store_backend_terminated_again_and_again_under_concurrent_sessions(start_listener, smtp_key):
    """Four sessions send for a few seconds while the store's backend is terminated every
    0.3 s (``pg_terminate_backend``): every 250's transmission is there with its message,
    nothing answered 451 is stored, and a message after the storm gets 250."""
    import time

    import psycopg

    from transmissions.models import Message

    listener = start_listener(store_timeout=5.0)
    params = transmissions_store_params()
    stop = threading.Event()
    answers: dict[str, tuple[int, bytes]] = {}

    def sender(n: int) -> None:
        client = listener.client()
        login(client, smtp_key)
        for m in range(10_000):
            if stop.is_set():
                break
            rcpt = f"s{n}m{m}@example.com"
            answers[rcpt] = inject(client, [rcpt], message())
            time.sleep(0.01)  # light load: the machine is shared

    threads = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    killed = 0
    with psycopg.connect(**params, autocommit=True) as killer:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            time.sleep(0.3)
            killed += killer.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE %s AND pid <> pg_backend_pid()",
                ("%WITH ids AS MATERIALIZED%",),
            ).fetchone()[0]
    stop.set()
    for thread in threads:
        thread.join(30)
    codes = {code for code, _ in answers.values()}
    stored = set(Message.objects.values_list("email", flat=True))
    ok = {rcpt for rcpt, (code, _) in answers.items() if code == 250}
    failed = {rcpt for rcpt, (code, _) in answers.items() if code != 250}
    print(f"killed {killed}, answers {len(answers)}, 250: {len(ok)}, other: {len(failed)} {codes}")
    # Not every run has a 451: a backend killed between groups is replaced before the next
    # group (smtp_injection.server._ended_while_idle), so only kills in mid-statement cost one.
    assert killed > 5 and ok
    assert codes <= {250, 451}, codes
    assert ok <= stored, ok - stored
    assert not (failed & stored), failed & stored
    for rcpt in list(ok)[:20]:
        assert Transmission.objects.filter(pk=transmission_id(answers[rcpt][1]), messages__email=rcpt).exists()
    client = listener.client()
    login(client, smtp_key)
    assert inject(client, ["after@example.com"], message())[0] == 250


def test_a_group_carries_at_most_group_max_chars_of_sources_and_its_first_whatever_its_size():
    """An attacker's finding: 22 messages of 20 MiB went in one statement, which ran past the
    store's timeout: all 22 sessions, and a small message stored with them, got 451."""
    from types import SimpleNamespace

    from smtp_injection.server import GROUP_MAX_CHARS, _group_size

    def pending(*sizes: int) -> list:
        return [(SimpleNamespace(transmission=SimpleNamespace(content={"email_rfc822": "x" * n})), None) for n in sizes]

    big, small = 20 * 1024 * 1024, 10 * 1024
    assert _group_size(pending(*[small] * 100), 64) == 64
    assert _group_size(pending(*[big] * 22, small), 64) == 1
    assert _group_size(pending(small, small, big, big), 64) == 3
    assert _group_size(pending(GROUP_MAX_CHARS + 1, small), 64) == 1
    assert _group_size(pending(small), 64) == 1
