"""A tracking hit is answered and its events are kept whatever is down (issue 11, Deliver 2),
on the path without the hit log (``ENGAGE_EVENT_HIT_LOG=false``, and the hit log's own
fallback when its file cannot be written): Redis down → PostgreSQL's event outbox;
PostgreSQL down too → the local spool, replayed into Redis when it answers again. Each event
keeps its id through every fallback, so an event written twice lands once. The hit log's
own drills are in test_hitlog.py."""

from __future__ import annotations

import json
import socket

import pytest
from django.db import DatabaseError

from tests.helpers import fails_if_hung
from tests.tracking.helpers import closed_port
from tracking.views import PIXEL_GIF


@pytest.fixture(autouse=True)
def hit_log_off(settings):
    settings.ENGAGE_EVENT_HIT_LOG = False


@pytest.fixture
def redis_down(settings, event_stream):
    """REDIS_URL points at a port nothing listens on (the event stream's name is kept)."""
    from tracking import outbox

    up = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    def back_up():
        settings.REDIS_URL = up
        outbox._redis_pause["until"] = 0.0  # as if REDIS_PAUSE had passed

    yield back_up
    back_up()


@pytest.fixture
def spool_dir(settings, tmp_path):
    settings.ENGAGE_EVENT_SPOOL_DIR = str(tmp_path / "spool")
    return tmp_path / "spool"


@pytest.fixture
def postgres_down(monkeypatch):
    """The outbox insert fails as it does while PostgreSQL restarts."""
    from tracking import outbox

    class Down:
        def cursor(self):
            raise DatabaseError("connection refused")

        def close(self):
            pass

    monkeypatch.setattr(outbox, "connection", Down())


def _outbox() -> list[dict]:
    from tracking.models import EventOutbox

    return [event for row in EventOutbox.objects.order_by("id") for event in row.payload]


def test_while_redis_is_down_a_click_still_redirects_and_its_events_land_from_the_outbox(
    event_stream, client, tokens, db, redis_down, spool_dir
):
    from analytics.landing import outbox_land
    from tracking.models import Event

    response = client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer', unsubscribe=True)}")
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/offer"
    pixel = client.get(f"/q/{tokens.open('open')}")
    assert pixel.status_code == 200 and pixel.content == PIXEL_GIF
    assert sorted(e["type"] for e in _outbox()) == ["click", "link_unsubscribe", "open"]
    assert not spool_dir.exists() or not list(spool_dir.iterdir())

    assert outbox_land() == 3
    assert sorted(Event.objects.values_list("type", flat=True)) == ["click", "link_unsubscribe", "open"]
    assert _outbox() == []


def test_with_redis_and_postgres_down_the_hit_is_spooled_to_disk_and_replayed_into_redis_once(
    event_stream, client, tokens, db, redis_down, spool_dir, postgres_down, buffered
):
    from analytics.landing import events_land
    from tracking.models import Event
    from tracking.outbox import spool_replay

    for _ in range(3):
        assert client.get(f"/f/{tokens.click('https://example.com/a', 'A')}").status_code == 302
    spooled = [json.loads(line) for path in spool_dir.iterdir() for line in path.read_bytes().splitlines()]
    assert [e["type"] for e in spooled] == ["click"] * 3

    assert spool_replay() == 0  # Redis still down: the file stays
    assert len(list(spool_dir.iterdir())) == 1
    redis_down()  # Redis is back
    assert spool_replay() == 3
    assert list(spool_dir.iterdir()) == []
    assert [e["event_id"] for e in buffered()] == [e["event_id"] for e in spooled]
    assert spool_replay() == 0
    events_land(consumer="test")
    assert Event.objects.filter(type="click").count() == 3


def test_a_line_cut_short_by_a_crash_is_dropped_and_the_rest_replayed(db, event_stream, spool_dir, buffered):
    from tracking.outbox import spool_replay

    spool_dir.mkdir()
    whole = json.dumps({"type": "click", "event_id": "1", "timestamp": "2026-11-30T10:00:00+00:00"})
    (spool_dir / "4242.jsonl").write_text(whole + "\n" + whole[:20])
    assert spool_replay() == 1
    assert [e["event_id"] for e in buffered()] == ["1"]


def test_the_next_hit_after_redis_returns_replays_the_spool(
    event_stream, client, tokens, db, redis_down, spool_dir, monkeypatch, buffered
):
    from tracking import outbox

    real = outbox.connection
    monkeypatch.setattr(outbox, "connection", type("Down", (), {"cursor": lambda s: (_ for _ in ()).throw(
        DatabaseError("down")), "close": lambda s: None})())  # fmt: skip
    client.get(f"/q/{tokens.open('open')}")
    monkeypatch.setattr(outbox, "connection", real)
    redis_down()
    client.get(f"/q/{tokens.open('open')}")
    _replay_joined()
    assert [e["type"] for e in buffered()] == ["open", "open"]
    assert list(spool_dir.iterdir()) == []


def _replay_joined() -> None:
    """Wait for the spool replay a hit started in the background (``spool_replay_soon``)."""
    from tracking import outbox

    thread = outbox._spool_replayer["thread"]
    assert thread is not None, "no hit started a replay"
    thread.join(60)
    assert not thread.is_alive()


def _spool_file(path, events: list[dict]) -> list[str]:
    """Write ``events`` (stamped) as a spool file; returns their ids."""
    from tracking.events import events_json, events_stamp

    stamped = events_stamp(events)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"".join(payload + b"\n" for payload in events_json(stamped)))
    return [event["event_id"] for event in stamped]


def test_a_hit_that_finds_a_big_spool_is_answered_at_once_and_every_spooled_event_lands(
    event_stream, client, tokens, db, spool_dir, monkeypatch, buffered
):
    """The replay once ran inside the hit that found the spool due (100,000 spooled events
    made that redirect take 1.8 s). A background thread replays it now: the hit writes its
    own event and nothing else, and is answered while the replay has not even begun."""
    import threading

    from tracking import outbox

    spooled = _spool_file(spool_dir / "4242.jsonl", [{"type": "open", "message_id": f"a{i}"} for i in range(15_000)])
    spooled += _spool_file(spool_dir / "4243.jsonl", [{"type": "click", "message_id": f"b{i}"} for i in range(5_000)])
    gate = threading.Event()
    real_replay, real_xadd = outbox.spool_replay, outbox.events_xadd
    monkeypatch.setattr(outbox, "spool_replay", lambda: gate.wait(30) and real_replay())
    hit_writes: list[int] = []

    def xadd(payloads, **kwargs):
        if threading.current_thread() is threading.main_thread():
            hit_writes.append(len(payloads))
        return real_xadd(payloads, **kwargs)

    monkeypatch.setattr(outbox, "events_xadd", xadd)
    outbox._spool["next_look"] = 0.0  # a look is due
    with fails_if_hung(15):  # the replay waits for the gate: a hit that waited on it would hang
        assert client.get(f"/f/{tokens.click('https://example.com/a', 'A')}").status_code == 302
        assert client.get(f"/q/{tokens.open('open')}").status_code == 200  # no second replay started
    assert hit_writes == [1, 1]
    assert len(list(spool_dir.iterdir())) == 2
    gate.set()
    _replay_joined()
    assert list(spool_dir.iterdir()) == []
    landed = [e["event_id"] for e in buffered()]
    assert len(landed) == 20_002 and set(spooled) < set(landed)


def test_a_replay_cut_off_half_way_keeps_the_file_and_the_next_one_lands_every_event_once(
    event_stream, db, spool_dir, monkeypatch, buffered
):
    """A spool file goes to Redis SPOOL_REPLAY_BATCH events per XADD; Redis failing at the
    third batch leaves the file whole, and what was written twice lands once."""
    import redis

    from analytics.landing import events_land
    from tracking import outbox
    from tracking.models import Event

    monkeypatch.setattr(outbox, "SPOOL_REPLAY_BATCH", 10)
    spooled = _spool_file(spool_dir / "4242.jsonl", [{"type": "open", "message_id": f"m{i}"} for i in range(35)])
    real_xadd, calls = outbox.events_xadd, []

    def failing_third(payloads, **kwargs):
        calls.append(len(payloads))
        if len(calls) == 3:
            raise redis.ConnectionError("Redis went away")
        return real_xadd(payloads, **kwargs)

    monkeypatch.setattr(outbox, "events_xadd", failing_third)
    assert outbox.spool_replay() == 0
    assert len(buffered()) == 20 and (spool_dir / "4242.jsonl").exists()
    assert outbox.spool_replay() == 35
    assert calls == [10, 10, 10, 10, 10, 10, 5]
    assert list(spool_dir.iterdir()) == []
    events_land(consumer="test")
    assert sorted(Event.objects.values_list("event_id", flat=True)) == sorted(spooled)


def test_an_event_written_to_redis_and_the_outbox_lands_once(db, event_stream):
    from django.db import connection

    from analytics.landing import events_land, outbox_land
    from tracking.events import events_enqueue, events_stamp
    from tracking.models import Event
    from tracking.outbox import outbox_write

    [event] = events_stamp([{"type": "click", "message_id": "m1", "rcpt_to": "a@example.com"}])
    events_enqueue([event])  # a pipeline that got through although the client saw an error
    with connection.cursor() as cursor:
        outbox_write(cursor, [event])
    assert outbox_land() == 1
    events_land(consumer="test")
    assert list(Event.objects.values_list("event_id", flat=True)) == [event["event_id"]]


@pytest.fixture
def redis_hung(settings, event_stream):
    """REDIS_URL points at a server that accepts connections and never answers (the kernel
    completes them; nothing reads them). Call it for the number of connections made so far."""
    from tracking import outbox

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    held = []

    def connections() -> int:
        while True:
            try:
                held.append(listener.accept()[0])
            except BlockingIOError:
                return len(held)

    up = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    yield connections
    settings.REDIS_URL = up
    outbox._redis_pause["until"] = 0.0  # hits try Redis again at once (as after REDIS_PAUSE)
    connections()
    for conn in held:
        conn.close()
    listener.close()


def test_a_hung_redis_costs_one_hit_its_short_timeout_and_the_next_hits_skip_it(
    event_stream, client, tokens, db, redis_hung, spool_dir, monkeypatch
):
    """Found by an attacker: every hit waited 2 s for a hung Redis, so 8 threads served 4 hits/s.
    The first hit gives up on Redis (after HIT_REDIS_TIMEOUT; the guard only catches a hit
    that waits on) and the next ones, within REDIS_PAUSE, never connect to it."""
    from tracking import outbox

    monkeypatch.setattr(outbox, "REDIS_PAUSE", 60.0)  # the next hits fall within it, however slow the machine
    click = f"/f/{tokens.click('https://example.com/a', 'A')}"
    with fails_if_hung(15):
        assert client.get(click).status_code == 302
    tried = redis_hung()
    assert tried >= 1
    for _ in range(4):
        assert client.get(click).status_code == 302
    assert redis_hung() == tried  # within REDIS_PAUSE: straight to PostgreSQL
    assert [e["type"] for e in _outbox()] == ["click"] * 5


def test_when_nothing_can_keep_the_event_the_hit_is_still_answered(
    event_stream, client, tokens, db, redis_down, postgres_down, settings, tmp_path, caplog
):
    """Found by an attacker: an unwritable spool turned clicks into 500s."""
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the spool directory should be")
    settings.ENGAGE_EVENT_SPOOL_DIR = str(blocker)
    response = client.get(f"/f/{tokens.click('https://example.com/a', 'A')}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/a"
    assert client.get(f"/q/{tokens.open('open')}").status_code == 200
    assert "LOST" in caplog.text


@pytest.fixture
def pause_reset():
    """Hits try Redis again after the test (a failure pauses it for REDIS_PAUSE)."""
    from tracking import outbox

    yield
    outbox._redis_pause["until"] = 0.0


def test_a_thread_whose_redis_connection_was_dropped_connects_again(event_stream, db, buffered, pause_reset):
    """Hits write on a connection of their thread (tracking.events.events_xadd): one Redis
    closed (a restart, a timeout) is replaced, and the hit in between is kept in the outbox."""
    from tracking import events, outbox

    assert outbox.events_record([{"type": "click", "message_id": "m1"}]) == "redis"
    conn = events._thread_connection(outbox.HIT_REDIS_TIMEOUT)
    conn.send_command("CLIENT", "ID")
    events.events_redis().client_kill_filter(_id=conn.read_response())  # this thread's connection only
    first = outbox.events_record([{"type": "click", "message_id": "m2"}])
    outbox._redis_pause["until"] = 0.0
    assert outbox.events_record([{"type": "click", "message_id": "m3"}]) == "redis"
    kept = [e["message_id"] for e in buffered()] + [e["message_id"] for e in _outbox()]
    assert sorted(kept) == ["m1", "m2", "m3"] and first in ("redis", "outbox")
