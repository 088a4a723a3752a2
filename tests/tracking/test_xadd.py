"""The click path's hand-written XADD (tracking/events.py ``events_xadd``): a connection
Redis closed is replaced without taking Redis for down, and a reply that is not XADD's drops
the connection and keeps the event (both found by an attacker's review)."""

from __future__ import annotations

import socket
import threading
import time

import pytest


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
