"""The event buffer: enqueue to Redis, land in PostgreSQL exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from analytics.landing import events_land
from tests.helpers import fails_if_hung
from tracking.events import event_id_new, events_enqueue, events_redis
from tracking.models import Event

pytestmark = pytest.mark.usefixtures("event_stream")


def test_enqueue_assigns_unique_time_ordered_ids_and_utc_timestamps(buffered):
    events_enqueue([{"type": "delivery", "message_id": "m1"}, {"type": "delivery", "message_id": "m2"}])
    first, second = buffered()
    assert first["event_id"].isdigit() and int(first["event_id"]) < int(second["event_id"])
    assert datetime.fromisoformat(first["timestamp"]).utcoffset().total_seconds() == 0


def test_event_ids_do_not_repeat_within_a_millisecond():
    ids = [event_id_new(now_ms=1_700_000_000_000) for _ in range(10000)]
    assert len(set(ids)) == len(ids)


def test_enqueue_keeps_given_id_and_timestamp(buffered):
    events_enqueue([{"type": "bounce", "event_id": "42", "timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}])
    [event] = buffered()
    assert event["event_id"] == "42" and event["timestamp"] == "2026-01-02T03:04:05+00:00"


def test_enqueue_refuses_an_event_without_type():
    with pytest.raises(ValueError):
        events_enqueue([{"message_id": "m"}])


def test_landing_fills_defaults_and_keeps_unknown_keys_in_extra(db, rollup_calls):
    events_enqueue(
        [{"type": "delivery", "rcpt_to": "a@Example.com", "transactional": "1", "num_retries": "2", "msg_size": 1024}]
    )
    assert events_land(consumer="t") == 1
    row = Event.objects.get()
    assert row.type == "delivery" and row.transactional is True and row.recipient_domain == "example.com"
    assert row.extra == {"num_retries": "2", "msg_size": 1024}
    assert (row.rcpt_meta, row.rcpt_tags, row.campaign_id) == ({}, [], "")
    assert events_land(consumer="t") == 0


def _rolled_up(column: str) -> int:
    from analytics.models import RollupHourly

    return sum(RollupHourly.objects.values_list(column, flat=True))


def test_landed_events_are_folded_into_the_rollups_in_the_same_batch(db):
    events_enqueue([{"type": "injection", "message_id": "m1"}, {"type": "delivery", "message_id": "m1"}])
    events_land(consumer="t")
    assert Event.objects.count() == 2
    assert (_rolled_up("injected"), _rolled_up("delivered")) == (1, 1)


def test_relanding_the_same_events_makes_no_duplicates(db):
    event = {"type": "click", "event_id": "777", "timestamp": "2026-03-01T10:00:00+00:00"}
    events_enqueue([event])
    events_land(consumer="t")
    events_enqueue([event, event])
    assert events_land(consumer="t") == 2
    assert Event.objects.filter(event_id="777").count() == 1
    assert _rolled_up("clicked") == 1


def _read_without_ack(consumer: str, settings) -> int:
    """A lander that reads a batch and dies before landing it."""
    client = events_redis()
    stream, group = settings.ENGAGE_EVENT_STREAM, settings.ENGAGE_EVENT_GROUP
    client.xgroup_create(stream, group, id="0", mkstream=True)
    [(_name, entries)] = client.xreadgroup(group, consumer, {stream: ">"}, count=100)
    return len(entries)


def test_a_dead_landers_events_are_reclaimed_and_landed_exactly_once(db, settings, rollup_calls):
    import time

    events_enqueue([{"type": "open", "message_id": f"m{i}"} for i in range(5)])
    assert _read_without_ack("dead", settings) == 5
    assert events_land(consumer="alive") == 0  # not idle long enough to be taken over yet
    settings.ENGAGE_EVENT_RECLAIM_MS = 50
    time.sleep(0.1)
    assert events_land(consumer="alive") == 5
    assert sorted(Event.objects.values_list("message_id", flat=True)) == [f"m{i}" for i in range(5)]
    time.sleep(0.1)
    assert events_land(consumer="other") == 0
    assert Event.objects.count() == 5
    assert events_redis().xlen(settings.ENGAGE_EVENT_STREAM) == 0


def test_a_lander_dying_after_commit_before_ack_causes_no_duplicates(db, settings, monkeypatch, rollup_calls):
    import time

    from analytics import landing

    events_enqueue([{"type": "click", "message_id": "m1"}, {"type": "open", "message_id": "m1"}])

    def die(client, ids):
        raise SystemExit("killed")

    monkeypatch.setattr(landing, "_ack", die)
    with pytest.raises(SystemExit):
        events_land(consumer="doomed")
    monkeypatch.undo()
    assert Event.objects.count() == 2
    settings.ENGAGE_EVENT_RECLAIM_MS = 50
    time.sleep(0.1)
    assert events_land(consumer="survivor") == 2
    assert Event.objects.count() == 2
    assert len(rollup_calls) == 1  # the re-landed rows conflicted: nothing new to roll up
    assert events_redis().xlen(settings.ENGAGE_EVENT_STREAM) == 0


def test_landing_creates_the_day_partition(db):
    from django.db import connection

    events_enqueue([{"type": "delivery", "timestamp": "2031-05-06T23:59:59+00:00"}])
    events_land(consumer="t")
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_event")
        assert cursor.fetchone()[0] == "tracking_event_20310506"


def test_a_day_with_rows_in_the_default_partition_still_lands(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_event_default (event_id, type, timestamp) VALUES ('1', 'delivery', '2032-01-01T05:00Z')"
        )
    events_enqueue([{"type": "delivery", "timestamp": "2032-01-01T06:00:00+00:00"}])
    assert events_land(consumer="t") == 1
    assert Event.objects.count() == 2


def test_land_events_command_once(db, rollup_calls):
    from io import StringIO

    from django.core.management import call_command

    events_enqueue([{"type": "delivery"}])
    out = StringIO()
    call_command("land_events", "--once", stdout=out)
    assert "landed 1" in out.getvalue() and Event.objects.count() == 1


def test_land_events_task_lands_what_is_buffered_and_ends(db, rollup_calls):
    """It lands for LAND_SECONDS (beat runs it every second), then returns the count; the guard
    only catches a task that never ends."""
    from analytics.tasks import land_events

    events_enqueue([{"type": "delivery"}, {"type": "bounce"}])
    with fails_if_hung(30):
        assert land_events.run() == 2
    assert sorted(Event.objects.values_list("type", flat=True)) == ["bounce", "delivery"]
    assert land_events.name == "analytics.land_events"


def test_tracking_keys_are_newest_first_and_bad_entries_fail_loudly(settings):
    from tracking.signing import tracking_keys

    settings.ENGAGE_TRACKING_KEYS = ["1:first-secret-0123456789", "7:second-secret-0123456789"]
    assert [kid for kid, _ in tracking_keys()] == [7, 1]
    for bad in (["nocolon"], ["x:secret-0123456789abc"], ["300:secret-0123456789abc"], ["1:short"], []):
        settings.ENGAGE_TRACKING_KEYS = bad
        with pytest.raises(ImproperlyConfigured):
            tracking_keys()
    settings.ENGAGE_TRACKING_KEYS = ["1:first-secret-0123456789", "1:again-secret-0123456789"]
    with pytest.raises(ImproperlyConfigured):
        tracking_keys()


def test_tracking_base_url_takes_the_host_from_tracking_domain(settings):
    from tracking.signing import tracking_base_url

    settings.ENGAGE_TRACKING_BASE_URL = "https://track.example.com"
    assert tracking_base_url(None) == "https://track.example.com"
    assert tracking_base_url("click.brand.example:8443") == "https://click.brand.example:8443"
    assert tracking_base_url("http://other.example/") == "http://other.example"
