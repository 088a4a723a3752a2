"""Webhook fan-out from the feed (issue 11): landing writes one feed row per event whatever
the number of webhooks; each webhook's batches are cut after its own cursor; no event is
skipped or given twice when landers commit out of order."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from analytics import rollups, webhooks
from analytics.ingest import event_row, events_insert
from analytics.models import Webhook, WebhookBatch, WebhookFeedEvent, WebhookPayload, WebhookPendingEvent
from mailcore.events import NAMES
from tests.analytics import data
from tracking.models import Event

WANTED = {"/all": sorted(NAMES), "/clicks": ["click"], "/send": ["delivery", "open"]}


def _events(seed: int, messages: int, tag: str) -> list[dict]:
    """Generated events with event ids of their own (``data.generate`` numbers from 1 per call)."""
    events = data.generate(seed=seed, messages=messages)
    for event in events:
        event["event_id"] = f"{tag}-{event['event_id']}"
    return events


def _land(events: list[dict]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        events_insert(cursor, [event_row(event) for event in events], returning=False)


def _hook(receiver, path: str, events: list[str], **fields) -> Webhook:
    return Webhook.objects.create(name=path, target=receiver.url + path, events=sorted(events), **fields)


def _flush(now=None) -> list[str]:
    now = now or timezone.now()
    made = webhooks.webhook_batches_build(now=now, force=True)
    for batch_id, lease in webhooks.webhook_batches_lease_due(now=now, limit=10_000):
        webhooks.webhook_batch_deliver(batch_id=batch_id, now=now, lease=lease)
    return made


def _delivered(receiver, path: str) -> list[str]:
    return [next(iter(r["msys"].values()))["event_id"] for b in receiver.batches(path) for r in b]


def _batched(hook: Webhook) -> list[str]:
    """The event ids of every batch made for ``hook`` (from the stored bodies)."""
    ids = []
    for batch in WebhookBatch.objects.filter(webhook_id=hook.pk).select_related("body"):
        ids += [next(iter(r["msys"].values()))["event_id"] for r in json.loads(bytes(batch.body.content))]
    return ids


def _ids(events: list[dict], types) -> list[str]:
    return sorted(e["event_id"] for e in events if e["type"] in types)


@pytest.mark.slow
@override_settings(ENGAGE_WEBHOOK_BATCH_SIZE=7)
def test_every_webhook_gets_each_event_it_wants_once_in_capped_batches(db, receiver):
    for path, events in WANTED.items():
        _hook(receiver, path, events)
    _hook(receiver, "/off", sorted(NAMES), active=False)
    events = _events(21, 40, "a")
    data.land(events, batch=50)  # shuffled, the first batch landed twice
    assert _flush()
    for path, types in WANTED.items():
        assert sorted(_delivered(receiver, path)) == _ids(events, types), path
        assert all(1 <= len(batch) <= 7 for batch in receiver.batches(path))
    assert receiver.batches("/off") == []
    posts = len(receiver.requests)
    assert _flush() == [] and len(receiver.requests) == posts


@pytest.mark.parametrize("webhook_count", [1, 100])
def test_landing_writes_one_row_per_event_whatever_the_number_of_webhooks(db, receiver, webhook_count):
    for number in range(webhook_count):
        _hook(receiver, f"/h{number}", sorted(NAMES))
    events = _events(22, 30, "b")
    _land(events)
    assert WebhookFeedEvent.objects.count() == len(events)
    assert WebhookPendingEvent.objects.count() == 0
    _land(events)  # landed again: nothing is new, nothing is appended
    assert WebhookFeedEvent.objects.count() == len(events)


def test_new_events_of_a_partly_relanded_batch_enter_the_feed_once(db, receiver):
    _hook(receiver, "/send", ["delivery"])
    events = _events(35, 30, "r")
    _land(events[:10])
    _land(events)
    deliveries = sorted(Event.objects.filter(type="delivery").values_list("pk", flat=True))
    assert sorted(WebhookFeedEvent.objects.values_list("event_pk", flat=True)) == deliveries


def test_landing_without_an_active_webhook_writes_no_feed_row(db, receiver):
    _hook(receiver, "/off", ["click"], active=False)
    _land(_events(23, 10, "c"))
    assert WebhookFeedEvent.objects.count() == 0


def test_only_the_types_some_webhook_wants_enter_the_feed(db, receiver):
    _hook(receiver, "/clicks", ["click"])
    _hook(receiver, "/bounces", ["bounce"])
    events = _events(24, 40, "d")
    _land(events)
    assert sorted(WebhookFeedEvent.objects.values_list("type", flat=True)) == sorted(
        e["type"] for e in events if e["type"] in ("click", "bounce")
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pause", ["before_the_feed", "holding_the_feed_lock"])
def test_landers_committing_out_of_order_skip_nothing_and_give_nothing_twice(receiver, monkeypatch, pause):
    """Lander 1 draws its event ids first but commits last; the builder runs while it is
    still open, again after it committed. Lander 1 pauses before the feed (lander 2 then
    commits first) or after taking the feed lock (lander 2 then waits for it)."""
    hook = _hook(receiver, "/all", sorted(NAMES))
    first, second = _events(25, 15, f"first-{pause}"), _events(26, 15, f"second-{pause}")
    for event in second:  # no rollup row (campaign, message) in common: lander 2 waits for nothing else
        event["campaign_id"], event["message_id"] = "second", "f" + event["message_id"][1:]
    # Message ids of this case alone: tracking_event outlives a transactional test, and a
    # message's second list_unsubscribe is not landed (SPEC A.5).
    for event in first + second:
        event["message_id"] = event["message_id"][0] + "ab"[pause == "holding_the_feed_lock"] + event["message_id"][2:]
    with connection.cursor() as cursor:  # nor for a partition lander 1 would create
        for day in sorted({e["timestamp"].date() for e in first + second}):
            cursor.execute("SELECT engage_event_partition(%s)", [day])
    paused, resume = threading.Event(), threading.Event()
    feed_append = rollups.webhook_feed_append

    def pausing(cursor):
        if threading.current_thread().name == "lander-1" and pause == "before_the_feed":
            paused.set()
            assert resume.wait(20)
        feed_append(cursor)
        if threading.current_thread().name == "lander-1" and pause == "holding_the_feed_lock":
            paused.set()
            assert resume.wait(20)

    monkeypatch.setattr(rollups, "webhook_feed_append", pausing)

    def land_in_thread(events, name):
        def run():
            try:
                _land(events)
            finally:
                connection.close()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    lander_1 = land_in_thread(first, "lander-1")
    assert paused.wait(20)
    lander_2 = land_in_thread(second, "lander-2")
    lander_2.join(3)
    lander_2_waited = lander_2.is_alive()
    made_meanwhile = webhooks.webhook_batches_build(force=True)
    resume.set()
    lander_1.join(20)
    lander_2.join(20)
    webhooks.webhook_batches_build(force=True)

    ids_1 = set(Event.objects.filter(event_id__startswith=f"first-{pause}-").values_list("id", flat=True))
    ids_2 = set(Event.objects.filter(event_id__startswith=f"second-{pause}-").values_list("id", flat=True))
    assert max(ids_1) < min(ids_2)  # lander 1's events have the lower ids; it committed last
    got = _batched(hook)
    assert sorted(got) == sorted(e["event_id"] for e in first + second)  # each event once
    if pause == "before_the_feed":
        assert not lander_2_waited and made_meanwhile  # lander 2's events went out while lander 1 was open
    else:
        assert lander_2_waited and made_meanwhile == []  # lander 2 waited for lander 1's commit
    assert WebhookFeedEvent.objects.count() == 0  # every row taken and pruned


@pytest.mark.django_db(transaction=True)
@override_settings(ENGAGE_WEBHOOK_BATCH_SIZE=3)
def test_two_builders_at_once_cut_each_event_once(receiver):
    hooks = [_hook(receiver, f"/h{number}", ["click", "delivery", "open"]) for number in range(3)]
    events = _events(36, 40, "builders")
    _land(events)
    start = threading.Barrier(2)

    def build():
        try:
            start.wait(10)
            webhooks.webhook_batches_build(force=True)
        finally:
            connection.close()

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    wanted = _ids(events, ["click", "delivery", "open"])
    assert all(sorted(_batched(hook)) == wanted for hook in hooks)
    assert all(batch.batch_size <= 3 for batch in WebhookBatch.objects.all())


def test_a_webhook_created_later_gets_only_newer_events_and_older_ones_by_replay(db, api, receiver):
    _hook(receiver, "/early", ["delivery"])
    before = _events(27, 20, "before")
    _land(before)
    late = _hook(receiver, "/late", ["delivery"])
    after = _events(28, 20, "after")
    _land(after)
    _flush()
    assert sorted(_delivered(receiver, "/early")) == _ids(before + after, ["delivery"])
    assert sorted(_delivered(receiver, "/late")) == _ids(after, ["delivery"])
    window = {"from": "2024-02-01T00:00", "to": "2024-04-01T00:00"}
    assert api.post(f"/api/v1/webhooks/{late.pk}/replay", window, format="json").status_code == 200
    _flush()
    assert sorted(_delivered(receiver, "/late")) == sorted(_ids(after, ["delivery"]) * 2 + _ids(before, ["delivery"]))


def test_a_deactivated_webhook_gets_nothing_and_after_reactivation_only_newer_events(db, api, receiver):
    hook = _hook(receiver, "/toggled", ["delivery"])
    assert api.put(f"/api/v1/webhooks/{hook.pk}", {"active": False}, format="json").status_code == 200
    while_off = _events(29, 20, "off")
    _land(while_off)
    _flush()
    assert receiver.batches("/toggled") == []
    assert api.put(f"/api/v1/webhooks/{hook.pk}", {"active": True}, format="json").status_code == 200
    back_on = _events(30, 20, "on")
    _land(back_on)
    _flush()
    assert sorted(_delivered(receiver, "/toggled")) == _ids(back_on, ["delivery"])


@override_settings(ENGAGE_WEBHOOK_BATCH_SIZE=5, ENGAGE_WEBHOOK_BATCH_SECONDS=30)
def test_a_partial_batch_waits_until_its_oldest_event_waited_long_enough(db, receiver):
    hook = _hook(receiver, "/clicks", ["click"])
    events = _events(31, 60, "e")
    clicks = [e for e in events if e["type"] == "click"][:7]
    _land(clicks)
    now = timezone.now()
    assert len(webhooks.webhook_batches_build(now=now)) == 1  # the full one
    assert webhooks.webhook_batches_build(now=now + timedelta(seconds=20)) == []
    assert len(webhooks.webhook_batches_build(now=now + timedelta(seconds=31))) == 1
    assert sorted(_batched(hook)) == _ids(clicks, ["click"])
    assert sorted(WebhookBatch.objects.values_list("batch_size", flat=True)) == [2, 5]


@override_settings(ENGAGE_WEBHOOK_BATCH_SIZE=10)
def test_webhooks_taking_the_same_events_share_one_stored_body_per_batch(db, receiver):
    hooks = [_hook(receiver, f"/same{number}", ["click", "open"]) for number in range(5)]
    other = _hook(receiver, "/other", ["click"])
    events = _events(32, 40, "f")
    _land(events)
    _flush()
    wanted = _ids(events, ["click", "open"])
    per_hook = -(-len(wanted) // 10)
    assert all(sorted(_batched(hook)) == wanted for hook in hooks)
    assert sorted(_batched(other)) == _ids(events, ["click"])
    bodies = {batch.body_id for batch in WebhookBatch.objects.filter(webhook_id__in=[h.pk for h in hooks])}
    assert len(bodies) == per_hook
    assert WebhookPayload.objects.count() == per_hook + WebhookBatch.objects.filter(webhook_id=other.pk).count()
    assert {tuple(_delivered(receiver, f"/same{n}")) for n in range(5)} == {tuple(_delivered(receiver, "/same0"))}


def test_events_queued_per_webhook_before_the_feed_are_delivered_once(db, receiver):
    """Migration 0005 leaves the rows the old lander wrote in analytics_webhook_pending: the
    builder drains them (and the feed holds none of those events)."""
    events = _events(33, 20, "g")
    _land(events)  # no active webhook: nothing in the feed
    hook = _hook(receiver, "/old", ["delivery"])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_webhook_pending (webhook_id, event_pk, event_timestamp, created_at) "
            "SELECT %s, id, timestamp, now() FROM tracking_event WHERE type = 'delivery'",
            [hook.pk],
        )
    _flush()
    _flush()
    assert sorted(_delivered(receiver, "/old")) == _ids(events, ["delivery"])
    assert WebhookPendingEvent.objects.count() == 0


def test_a_batch_made_before_the_shared_bodies_is_posted_from_its_payload(db, receiver):
    hook = _hook(receiver, "/legacy", ["delivery"])
    now = timezone.now()
    records = [{"msys": {"message_event": {"type": "delivery", "event_id": "1"}}}]
    batch = WebhookBatch.objects.create(
        webhook_id=hook.pk, target=hook.target, payload=records, batch_size=1, created_at=now,
        next_attempt_at=now, expires_at=now + timedelta(hours=8),
    )  # fmt: skip
    assert webhooks.webhook_batch_deliver(batch_id=str(batch.pk), now=now) == "delivered"
    assert receiver.batches("/legacy") == [records]


@override_settings(ENGAGE_WEBHOOK_BATCH_SECONDS=30)
def test_the_feed_keeps_what_an_active_webhook_has_not_taken_and_drops_the_rest(db, receiver):
    _hook(receiver, "/clicks", ["click"])
    _hook(receiver, "/bounces", ["bounce"])
    events = _events(34, 40, "h")
    _land(events)
    webhooks.webhook_batches_build(now=timezone.now())  # nothing has waited 30 s: nothing is cut
    assert WebhookFeedEvent.objects.count() == len(_ids(events, ["click", "bounce"]))
    _flush()
    assert WebhookFeedEvent.objects.count() == 0


@pytest.mark.slow
def test_a_webhook_post_goes_to_the_webhooks_queue_and_beats_dispatch_to_housekeeping(settings):
    """POSTs wait on other people's servers: their own queue and worker. The dispatch is a
    tick of beat's: beat's queue, so it never waits behind slow POSTs."""
    from engage.celery import app

    app.loader.import_default_modules()
    webhook_tasks = [name for name in app.tasks if name.startswith("analytics.webhook")]
    assert sorted(webhook_tasks) == ["analytics.webhook_batch_deliver", "analytics.webhooks_dispatch"]
    beat = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] in webhook_tasks]
    assert [entry["task"] for entry in beat] == ["analytics.webhooks_dispatch"]
    with mock.patch.object(app, "send_task") as send_task:
        app.tasks["analytics.webhook_batch_deliver"].apply_async(("a-batch-id",), {})  # what .delay() calls
    queue = send_task.call_args.kwargs.get("queue")
    assert (
        app.amqp.router.route({"queue": queue} if queue else {}, "analytics.webhook_batch_deliver")["queue"].name
        == "webhooks"
    )
    with mock.patch.object(app, "send_task") as send_task:
        app.tasks["analytics.webhooks_dispatch"].apply_async((), {}, **beat[0].get("options", {}))  # what beat calls
    queue = send_task.call_args.kwargs.get("queue")
    assert (
        app.amqp.router.route({"queue": queue} if queue else {}, "analytics.webhooks_dispatch")["queue"].name
        == "housekeeping"
    )
