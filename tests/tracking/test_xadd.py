"""The click path's hand-written XADD (tracking/events.py ``events_xadd``): a connection
Redis closed is replaced without taking Redis for down, and a reply that is not XADD's drops
the connection and keeps the event (both found by an attacker's review)."""

from __future__ import annotations

import socket
import threading
import time

import pytest


@pytest.fixture(autouse=True)
def hit_log_off(settings):
    """The views' hits take the round trip under test (``ENGAGE_EVENT_HIT_LOG=false``; the
    hit log's shipper uses the same ``events_xadd``)."""
    settings.ENGAGE_EVENT_HIT_LOG = False


@pytest.fixture
def pause_reset():
    from tracking import outbox

    outbox._redis_pause["until"] = 0.0
    yield
    outbox._redis_pause["until"] = 0.0


class _FakeRedis:
    """A TCP peer that answers redis-py's handshake with +OK and each XADD with ``reply``."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen()
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                if b"XADD" in buf:
                    conn.sendall(self.reply)
                    buf = b""
                elif b"SETINFO" in buf:
                    conn.sendall(b"+OK\r\n" * buf.count(b"SETINFO"))
                    buf = b""


# A reply whose bulk length is not a number (a proxy that breaks the protocol) once raised
# ValueError through events_record: the view answered 500, the event went nowhere and the
# connection stayed out of step.
def test_a_malformed_xadd_reply_drops_the_connection_and_keeps_the_event(settings, db, pause_reset):
    from tracking import events, outbox

    fake = _FakeRedis(b"$x\r\n")
    settings.REDIS_URL = f"redis://127.0.0.1:{fake.port}/0"
    where = outbox.events_record([{"type": "click", "message_id": "malformed-reply"}])
    assert where == "outbox"
    assert events._thread_connection(outbox.HIT_REDIS_TIMEOUT)._sock is None


# A kept connection Redis closed (a restart, its idle `timeout`, a NAT or load balancer drop)
# is found by the hit that writes on it: that hit once went to PostgreSQL and paused Redis for
# the whole process for REDIS_PAUSE (1 s). It reconnects once and lands in Redis.
def test_a_connection_redis_closed_is_replaced_without_leaving_redis(event_stream, db, buffered, pause_reset):
    from tracking import events, outbox

    assert outbox.events_record([{"type": "click", "message_id": "k1"}]) == "redis"
    conn = events._thread_connection(outbox.HIT_REDIS_TIMEOUT)
    conn.send_command("CLIENT", "ID")
    events.events_redis().client_kill_filter(_id=conn.read_response())
    assert outbox.events_record([{"type": "click", "message_id": "k2"}]) == "redis"
    assert outbox._redis_pause["until"] == 0.0
    assert [event["message_id"] for event in buffered()] == ["k1", "k2"]


def test_a_nil_reply_is_read_at_once_not_waited_for(settings, db, pause_reset):
    from tracking import events

    fake = _FakeRedis(b"$-1\r\n")
    settings.REDIS_URL = f"redis://127.0.0.1:{fake.port}/0"
    started = time.monotonic()
    events.events_xadd([b"{}"], timeout=5)
    assert time.monotonic() - started < 2


def test_threads_clicking_at_once_each_get_their_own_event_into_redis(event_stream, buffered, pause_reset):
    from tracking import outbox

    count = 16
    barrier = threading.Barrier(count)
    results: dict[int, str] = {}

    def click(n: int) -> None:
        barrier.wait()
        results[n] = outbox.events_record([{"type": "click", "message_id": f"t{n}"}])

    threads = [threading.Thread(target=click, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == dict.fromkeys(range(count), "redis")
    assert sorted(event["message_id"] for event in buffered()) == sorted(f"t{n}" for n in range(count))


def _closed(sock: socket.socket) -> None:
    """Close ``sock`` at once (a FIN now, though another thread may be reading it)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _CuttingProxy:
    """A TCP proxy to the real Redis that closes the client's connection right after passing
    on the ``cut_at``-th XADD reply (a bulk string: the entry id), once; then passes all."""

    def __init__(self, upstream: tuple[str, int], cut_at: int) -> None:
        self.upstream, self.left = upstream, cut_at
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen()
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            _closed(sock)

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        buffer = b""
        try:
            while data := server.recv(65536):
                buffer += data
                while b"\r\n" in buffer:
                    line_end = buffer.index(b"\r\n") + 2
                    end = line_end
                    if buffer[:1] == b"$":
                        end = line_end + int(buffer[1 : line_end - 2]) + 2
                        if len(buffer) < end:
                            break
                    client.sendall(buffer[:end])
                    buffer = buffer[end:]
                    if end > line_end:  # an XADD reply (a bulk string) passed on
                        self.left -= 1
                        if self.left == 0:
                            raise OSError("cut")
        except OSError:
            pass
        for sock in (server, client):
            _closed(sock)


@pytest.mark.parametrize(
    ("cut_at", "where"),
    [
        (1, "outbox"),  # a new connection dies after the first reply: both events to the outbox
        (2, "redis"),  # a kept one dies after the batch's first reply: resent once on a new one
    ],
)
def test_a_connection_that_dies_mid_reply_loses_no_event_and_lands_each_once(
    event_stream, settings, db, pause_reset, cut_at, where
):
    """Redis stored the batch but the connection died after one of its replies: the events
    whose replies were not read are written again (the outbox, or Redis once more), and the
    event table's unique (event_id, timestamp) lands each once."""
    from urllib.parse import urlsplit

    from analytics.landing import events_land, outbox_land
    from tracking import outbox
    from tracking.models import Event

    real = urlsplit(settings.REDIS_URL)
    proxy = _CuttingProxy((real.hostname, real.port or 6379), cut_at)
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}{real.path}"
    if cut_at == 2:
        assert outbox.events_record([{"type": "click", "message_id": "before"}]) == "redis"
    hit = [{"type": "click", "message_id": "hit"}, {"type": "link_unsubscribe", "message_id": "hit"}]
    assert outbox.events_record(hit) == where
    settings.REDIS_URL = real.geturl()
    outbox_land()
    events_land(consumer="test")
    landed = sorted(Event.objects.values_list("type", "message_id"))
    expected = [("click", "hit"), ("link_unsubscribe", "hit")] + ([("click", "before")] if cut_at == 2 else [])
    assert landed == sorted(expected)
