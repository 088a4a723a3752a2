"""What an odd spool directory cannot do (issue 11, an attacker's review of the hit log): an
entry that is not a regular file, a line that is not an event, a full disk. Each is skipped
or dropped with a log line; every other event lands, and no replay hangs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from tests.helpers import fails_if_hung


@pytest.fixture
def spool_dir(settings, tmp_path):
    directory = tmp_path / "spool"
    directory.mkdir()
    settings.ENGAGE_EVENT_SPOOL_DIR = str(directory)
    return directory


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch):
    from tracking import hitlog

    monkeypatch.setattr(hitlog, "_log", hitlog._Log())


def _dead_file(spool_dir, n: int = 3) -> list[str]:
    """A file a killed process left: ``n`` whole events; their ids."""
    from tracking.events import events_json, events_stamp

    stamped = events_stamp([{"type": "click", "message_id": f"dead-{i}"} for i in range(n)])
    (spool_dir / "hits-999999-1-0.jsonl").write_bytes(b"".join(p + b"\n" for p in events_json(stamped)))
    return [e["event_id"] for e in stamped]


def _live_event() -> str:
    from tracking.events import events_json, events_stamp, events_xadd

    live = events_stamp([{"type": "open", "message_id": "live"}])
    events_xadd(events_json(live))
    return live[0]["event_id"]


def test_a_directory_named_like_a_spool_file_is_skipped_and_everything_else_lands(event_stream, spool_dir, db, caplog):
    from analytics.landing import land_once
    from tracking.models import Event

    dead = _dead_file(spool_dir)
    (spool_dir / "0.jsonl").mkdir()  # sorts before every other file
    live = _live_event()
    land_once(consumer="test", block_ms=None)
    land_once(consumer="test", block_ms=None)
    assert set(dead) | {live} <= set(Event.objects.values_list("event_id", flat=True))
    assert "skipping spool entry" in caplog.text and "0.jsonl" in caplog.text


def test_a_fifo_in_the_spool_neither_hangs_a_replay_nor_the_shipper(event_stream, spool_dir, buffered):
    from tracking.hitlog import hits_record
    from tracking.outbox import spool_replay

    os.mkfifo(spool_dir / "a.jsonl")
    dead = _dead_file(spool_dir)
    replay = threading.Thread(target=spool_replay, daemon=True)
    replay.start()
    replay.join(30)
    assert not replay.is_alive(), "the replay waits on a FIFO"
    assert hits_record([{"type": "click", "message_id": "after"}]) == "hitlog"
    events = buffered()
    assert sorted(e["message_id"] for e in events) == ["after", "dead-0", "dead-1", "dead-2"]
    assert {e["event_id"] for e in events} >= set(dead)


def test_a_symlink_in_the_spool_is_not_followed_and_its_target_never_logged(event_stream, spool_dir, tmp_path, caplog):
    from tracking.outbox import spool_replay

    secret = tmp_path / "secret.conf"
    secret.write_text("db_password=hunter2\n")
    (spool_dir / "0.jsonl").symlink_to(secret)
    (spool_dir / "z.jsonl").symlink_to("/dev/zero")  # a read that would never end
    with fails_if_hung(30):
        assert spool_replay() == 0
    assert "hunter2" not in caplog.text
    assert secret.read_text() == "db_password=hunter2\n"


def test_lines_that_are_not_events_are_dropped_and_landing_goes_on(event_stream, spool_dir, db, settings, caplog):
    from analytics.landing import land_once
    from tracking.models import Event
    from tracking.outbox import spool_replay

    settings.ENGAGE_EVENT_RECLAIM_MS = 1000
    (spool_dir / "0.jsonl").write_bytes(b'"x"\n[1]\n{"no_type": 1}\n' + b"y" * 100 + b"\n")
    dead = _dead_file(spool_dir)
    assert spool_replay() == 3
    assert "dropped 4 spool line(s)" in caplog.text
    live = _live_event()
    land_once(consumer="test", block_ms=None)
    assert set(dead) | {live} <= set(Event.objects.values_list("event_id", flat=True))


def test_a_stream_entry_that_is_not_an_event_object_is_dropped_not_landed_forever(event_stream, db, caplog):
    """Whatever put it there: ``[1]`` once raised AttributeError in every batch it was in."""
    from analytics.landing import events_land
    from tracking.events import events_xadd
    from tracking.models import Event

    events_xadd([b"[1]", b'"x"', b'{"type": "click", "timestamp": "99999-01-01T00:00:00"}'])
    live = _live_event()
    events_land(consumer="test")
    assert list(Event.objects.values_list("event_id", flat=True)) == [live]
    assert caplog.text.count("dropping unreadable event entry") == 3


_FULL_DISK = """
import os, resource, signal, sys, django
django.setup()
from tracking.hitlog import hits_record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # every write of a file fails (EFBIG), as on a full disk
ways = [hits_record([{"type": "click", "message_id": f"full-{i}"}]) for i in range(50)]
print(" ".join(sorted(set(ways))), len(os.listdir(sys.argv[1])))
"""


def test_on_a_full_disk_hits_go_to_redis_and_leave_no_pile_of_empty_files(event_stream, spool_dir, settings, buffered):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engage.settings", "ENGAGE_EVENT_SPOOL_DIR": str(spool_dir),
           "REDIS_URL": settings.REDIS_URL, "ENGAGE_EVENT_STREAM": event_stream}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(spool_dir)], env=env, capture_output=True,
                          timeout=120, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["redis", "0"]  # every hit in Redis, no file left behind
    assert sorted(e["message_id"] for e in buffered()) == sorted(f"full-{i}" for i in range(50))
    assert "cannot be written" in done.stderr and done.stderr.count("cannot be written") == 1


def test_a_writer_s_temporary_file_left_by_a_crash_is_removed_once_old(event_stream, spool_dir):
    from tracking.outbox import SPOOL_TEMPORARY_MAX_AGE, spool_replay

    fresh, stale = spool_dir / ".hits-1-2-0.new", spool_dir / ".hits-1-1-0.new"
    fresh.write_bytes(b"")
    stale.write_bytes(b"")
    os.utime(stale, (0, os.stat(stale).st_mtime - SPOOL_TEMPORARY_MAX_AGE - 10))
    spool_replay()
    assert fresh.exists() and not stale.exists()


def test_hits_carry_the_same_fields_with_and_without_the_hit_log(event_stream, client, tokens, settings, buffered):
    from tracking.events import events_redis

    link = tokens.click("https://example.com/a", "A", unsubscribe=True)
    client.get(f"/f/{link}")
    client.get(f"/q/{tokens.open('open')}")
    with_log = buffered()
    events_redis().delete(event_stream)
    settings.ENGAGE_EVENT_HIT_LOG = False
    client.get(f"/f/{link}")
    client.get(f"/q/{tokens.open('open')}")
    without = buffered()

    def fields(events: list[dict]) -> list[str]:
        return [json.dumps({k: v for k, v in e.items() if k not in ("event_id", "timestamp")}) for e in events]

    assert len(with_log) == 3 and fields(with_log) == fields(without)
