"""The APIs agree on the event types, as SparkPost documents them: every type a webhook may
subscribe to is a filter of the events search; every recorded type is found by that filter,
counted in its metric and sent to webhooks in its category (SPEC A.3, B §6, B §7.3, B §8.1).
The expectations are written out from SPEC here, not read from ``mailcore.events``."""

from __future__ import annotations

from datetime import timedelta

from analytics import webhooks
from analytics.models import Webhook
from tests.analytics import data

# SPEC B §6.1: each type and the category of its webhook record.
CATEGORIES = {
    "injection": "message_event", "delivery": "message_event", "bounce": "message_event", "delay": "message_event",
    "out_of_band": "message_event", "policy_rejection": "message_event", "spam_complaint": "message_event",
    "open": "track_event", "initial_open": "track_event", "click": "track_event",
    "generation_failure": "gen_event", "generation_rejection": "gen_event",
    "list_unsubscribe": "unsubscribe_event", "link_unsubscribe": "unsubscribe_event",
}  # fmt: skip
# SPEC A.3 (the types Engage records) and B §7.3: the metric one event of each adds 1 to.
COUNTED_IN = {
    "injection": "count_injected", "delivery": "count_delivered", "bounce": "count_bounce",
    "delay": "count_delayed", "policy_rejection": "count_policy_rejection",
    "generation_failure": "count_generation_failed", "generation_rejection": "count_generation_rejection",
    "open": "count_rendered", "initial_open": "count_initial_rendered", "click": "count_clicked",
    "list_unsubscribe": "count_unsubscribe", "link_unsubscribe": "count_unsubscribe",
}  # fmt: skip
# SPEC B §7.3 metrics of the types Engage never records.
ALWAYS_ZERO = ("count_spam_complaint", "count_outofband_bounce")
AT = data.START + timedelta(hours=2)
WINDOW = {"from": "2024-03-01T00:00", "to": "2024-03-02T00:00"}


def _one_of_each_recorded_type() -> list[dict]:
    return [
        {"event_id": str(77_000 + number), "type": kind, "timestamp": AT + timedelta(seconds=number),
         "message_id": f"{number:020x}", "rcpt_to": f"r{number}@example.com", "bounce_class": "10"}
        for number, kind in enumerate(COUNTED_IN)
    ]  # fmt: skip


def test_the_webhooks_api_takes_every_sparkpost_type_and_the_events_search_filters_on_each(api, receiver):
    body = {"name": "All", "target": receiver.url + "/all", "events": sorted(CATEGORIES)}
    created = api.post("/api/v1/webhooks", body, format="json")
    assert created.status_code == 200, created.content
    hook = api.get(f"/api/v1/webhooks/{created.json()['results']['id']}").json()["results"]
    assert sorted(hook["events"]) == sorted(CATEGORIES)
    for kind in CATEGORIES:
        answer = api.get("/api/v1/events/message", {**WINDOW, "events": kind})
        assert answer.status_code == 200, (kind, answer.content)
    refused = api.post("/api/v1/webhooks", {**body, "events": ["opened"]}, format="json")
    assert refused.status_code == 422
    assert api.get("/api/v1/events/message", {**WINDOW, "events": "opened"}).status_code == 400


def test_each_recorded_type_is_found_by_its_filter_and_counted_in_its_metric(api):
    events = _one_of_each_recorded_type()
    data.land(events, shuffle=False)
    for event in events:
        found = api.get("/api/v1/events/message", {**WINDOW, "events": event["type"]}).json()["results"]
        assert [e["event_id"] for e in found] == [event["event_id"]], event["type"]
    metrics = sorted({*COUNTED_IN.values(), *ALWAYS_ZERO})
    got = api.get("/api/v1/metrics/deliverability", {**WINDOW, "metrics": ",".join(metrics)}).json()["results"][0]
    expected = {metric: list(COUNTED_IN.values()).count(metric) for metric in metrics}
    assert got == expected


def test_a_webhook_that_wants_every_type_gets_each_recorded_event_in_its_category(receiver, db):
    Webhook.objects.create(name="all", target=receiver.url + "/all", events=sorted(CATEGORIES))
    events = _one_of_each_recorded_type()
    data.land(events, shuffle=False)
    webhooks.webhook_batches_build(force=True)
    for batch_id, lease in webhooks.webhook_batches_lease_due():
        webhooks.webhook_batch_deliver(batch_id=batch_id, lease=lease)
    records = [record["msys"] for batch in receiver.batches("/all") for record in batch]
    got = {next(iter(r.values()))["type"]: next(iter(r)) for r in records}
    assert got == {kind: CATEGORIES[kind] for kind in COUNTED_IN}
