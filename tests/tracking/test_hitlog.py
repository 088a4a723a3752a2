"""The hit log (tracking/hitlog.py): a hit is answered once its events are in a local file,
a thread of the process moves them to Redis (else the outbox), and a file whose process died
is taken over by any replay of the spool directory. Each event lands once (issue 11, Deliver 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import DatabaseError

from tests.helpers import fails_if_hung
from tests.tracking.helpers import closed_port


@pytest.fixture
def spool_dir(settings, tmp_path):
    settings.ENGAGE_EVENT_SPOOL_DIR = str(tmp_path / "spool")
    return tmp_path / "spool"


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch):
    """This process's hit log as a new process has it (the shipper of earlier tests ends)."""
    from tracking import hitlog

    monkeypatch.setattr(hitlog, "_log", hitlog._Log())


@pytest.fixture
def shipping_held():
    """While the test holds it, this process's shipper cannot ship (as if its 20 ms had not
    passed); released at the end."""
    from tracking import hitlog

    hitlog._log.ship_lock.acquire()
    held = {"on": True}

    def release():
        if held["on"]:
            held["on"] = False
            hitlog._log.ship_lock.release()

    yield release
    release()


def _logged(spool_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(spool_dir.glob("*.jsonl")) for line in path.read_bytes().splitlines()]


def _stream(name: str) -> list[dict]:
    from tracking.events import events_redis

    return [json.loads(fields[b"e"]) for _id, fields in events_redis().xrange(name)]


def test_a_click_is_answered_once_its_events_are_in_the_file_and_the_thread_ships_them(
    event_stream, client, tokens, spool_dir, shipping_held
):
    response = client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer', unsubscribe=True)}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/offer"
    logged = _logged(spool_dir)
    assert [e["type"] for e in logged] == ["click", "link_unsubscribe"]
    assert _stream(event_stream) == []  # not in Redis yet: the answer did not wait for it

    shipping_held()
    with fails_if_hung(30):  # the shipper, not the test, moves them
        while len(_stream(event_stream)) < 2:
            time.sleep(0.01)
    assert [e["event_id"] for e in _stream(event_stream)] == [e["event_id"] for e in logged]
    assert list(spool_dir.glob("*.jsonl")) == []


def test_a_replay_elsewhere_never_takes_a_file_that_is_still_written(
    event_stream, client, tokens, spool_dir, shipping_held, buffered
):
    from tracking.outbox import spool_replay

    client.get(f"/q/{tokens.open('open')}")
    assert spool_replay() == 0  # the writer's lock: a lander would skip it too
    assert len(_logged(spool_dir)) == 1
    shipping_held()
    assert [e["type"] for e in buffered()] == ["open"]
    assert spool_replay() == 0 and _logged(spool_dir) == []


def test_while_redis_is_down_the_shipper_writes_the_hits_to_the_outbox_and_they_land_once(
    event_stream, client, tokens, spool_dir, settings, db
):
    from analytics.landing import events_land, outbox_land
    from tracking.hitlog import hits_flush
    from tracking.models import Event

    up = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert client.get(f"/f/{tokens.click('https://example.com/a', 'A')}").status_code == 302
    assert client.get(f"/q/{tokens.open('open')}").status_code == 200
    hits_flush()
    assert _logged(spool_dir) == []
    settings.REDIS_URL = up
    assert outbox_land() == 2
    events_land(consumer="test")
    assert sorted(Event.objects.values_list("type", flat=True)) == ["click", "open"]


def test_with_redis_and_postgres_down_the_file_stays_and_is_replayed_once_redis_is_back(
    event_stream, client, tokens, spool_dir, settings, db, monkeypatch, buffered
):
    from tracking import hitlog
    from tracking.outbox import spool_replay

    def postgres_down(payloads):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(hitlog, "outbox_payloads_write", postgres_down)
    up = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    for _ in range(3):
        assert client.get(f"/f/{tokens.click('https://example.com/a', 'A')}").status_code == 302
    logged = _logged(spool_dir)
    assert hitlog.hits_flush() == -1  # neither store took them: they stay
    assert _logged(spool_dir) == logged
    assert spool_replay() == 0  # Redis still down
    settings.REDIS_URL = up
    spool_replay()  # (or the shipper's own look at the directory, whichever comes first)
    assert [e["event_id"] for e in buffered()] == [e["event_id"] for e in logged]
    assert _logged(spool_dir) == []


_KILLED = """
import os, signal, django
django.setup()
from tracking import hitlog
hitlog._log.ship_lock.acquire()  # the process dies before its shipper's 20 ms
print(hitlog.hits_record([{"type": "click", "message_id": "killed"}]), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_file_of_a_process_killed_after_answering_is_taken_over_by_a_replay(event_stream, spool_dir, buffered):
    from tracking.outbox import spool_replay

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engage.settings", "ENGAGE_EVENT_SPOOL_DIR": str(spool_dir)}
    env.update(REDIS_URL=_redis_url(), ENGAGE_EVENT_STREAM=event_stream)
    done = subprocess.run([sys.executable, "-c", _KILLED], env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert done.stdout.decode().split() == ["hitlog"]  # answered, never shipped: in its file alone

    spool_replay()  # its lock died with it (a lander, or this process's shipper, takes it over)
    assert [e["message_id"] for e in buffered()] == ["killed"]
    assert _logged(spool_dir) == []


def _redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL


def test_a_forked_child_writes_its_own_file_never_its_parents(event_stream, spool_dir, shipping_held, buffered):
    from tracking.hitlog import hits_flush, hits_record

    hits_record([{"type": "click", "message_id": "parent"}])
    shipping_held()  # the child starts with the lock free (a new log), as the parent's shipper would leave it
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if hits_record([{"type": "click", "message_id": "child"}]) == "hitlog" and hits_flush() == 1 else 2
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The child shipped its own alone (its flush counted one); the parent's, once, by the parent,
    # before or after the child's (its shipper is free again: the order is the machine's).
    assert sorted(e["message_id"] for e in buffered()) == ["child", "parent"]
    assert hits_flush() == 0


def test_a_hit_log_that_cannot_be_written_sends_the_hit_to_redis_directly(
    event_stream, client, tokens, settings, tmp_path, buffered, caplog, monkeypatch
):
    from tracking import hitlog

    monkeypatch.setattr(hitlog, "_log", hitlog._Log())  # a process that has not logged the failure yet
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.ENGAGE_EVENT_SPOOL_DIR = str(blocker / "spool")  # under a file: cannot be made
    assert client.get(f"/f/{tokens.click('https://example.com/a', 'A')}").status_code == 302
    assert [e["type"] for e in _stream(event_stream)] == ["click"]  # no flush needed
    assert "cannot be written" in caplog.text


def test_with_the_hit_log_off_each_hit_takes_its_round_trip(event_stream, client, tokens, settings, spool_dir):
    settings.ENGAGE_EVENT_HIT_LOG = False
    assert client.get(f"/q/{tokens.open('open')}").status_code == 200
    assert [e["type"] for e in _stream(event_stream)] == ["open"]
    assert not spool_dir.exists() or _logged(spool_dir) == []
