from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory, override_settings

from analytics import webhooks
from analytics.models import Webhook, WebhookBatch
from tests.analytics import data
from tests.analytics.helpers import create_webhook
from tests.helpers import assert_error

NOW = datetime(2024, 3, 10, tzinfo=UTC)


def _events(n_messages=20):
    return data.generate(seed=11, messages=n_messages)


def _flush(now=NOW):
    webhooks.webhook_batches_build(now=now, force=True)
    for batch_id, lease in webhooks.webhook_batches_lease_due(now=now):
        webhooks.webhook_batch_deliver(batch_id=batch_id, now=now, lease=lease)


def test_create_sends_a_test_post_and_crud_works(api, receiver):
    hook_id = create_webhook(api, receiver, auth_token="s3cret")
    (test_post,) = receiver.posts("/hook")
    assert json.loads(test_post["body"]) == [{"msys": {}}]
    assert test_post["headers"]["X-MessageSystems-Webhook-Token"] == "s3cret"
    listed = api.get("/api/v1/webhooks").json()["results"]
    assert [h["id"] for h in listed] == [hook_id] and listed[0]["events"] == ["click", "delivery", "open"]
    got = api.get(f"/api/v1/webhooks/{hook_id}").json()["results"]
    assert got["name"] == "Hook" and {link["rel"] for link in got["links"]} == {
        "urn.msys.webhooks.validate",
        "urn.msys.webhooks.batches",
    }
    assert api.put(f"/api/v1/webhooks/{hook_id}", {"name": "Renamed"}, format="json").status_code == 200
    assert len(receiver.posts("/hook")) == 1  # no new test POST without a target change
    assert api.get(f"/api/v1/webhooks/{hook_id}").json()["results"]["name"] == "Renamed"
    validated = api.post(f"/api/v1/webhooks/{hook_id}/validate", {"message": {"msys": {}}}, format="json").json()
    assert validated["results"]["msg"] == "Test POST to endpoint succeeded"
    assert validated["results"]["response"]["status"] == 200
    assert api.delete(f"/api/v1/webhooks/{hook_id}").status_code == 204
    assert_error(api.get(f"/api/v1/webhooks/{hook_id}"), 404, "1600")


def test_failing_test_post_is_400_and_saves_nothing(api, receiver):
    receiver.codes["/bad"] = [500]
    body = {"name": "Hook", "target": receiver.url + "/bad", "events": ["open"]}
    error = assert_error(api.post("/api/v1/webhooks", body, format="json"), 400, "1200")
    assert "HTTP 500" in error["description"]
    assert Webhook.objects.count() == 0
    hook_id = create_webhook(api, receiver)
    assert_error(api.put(f"/api/v1/webhooks/{hook_id}", {"target": receiver.url + "/bad"}, format="json"), 400, "1200")
    assert Webhook.objects.get().target == receiver.url + "/hook"


def test_bad_bodies_are_rejected(api, receiver, db):
    for body in ({"name": "x", "events": ["open"]}, {"name": "x", "target": "ftp://x", "events": ["open"]},
                 {"name": "x", "target": receiver.url, "events": ["teleport"]}):  # fmt: skip
        assert api.post("/api/v1/webhooks", body, format="json").status_code == 422
    assert_error(api_post_grantless(api, receiver), 403, "1100")


def api_post_grantless(api, receiver):
    from rest_framework.test import APIClient

    from api_keys.services import api_key_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=api_key_create(label="v", grants=["webhooks/view"])[1])
    return client.post("/api/v1/webhooks", {"name": "x", "target": receiver.url, "events": ["open"]}, format="json")


@override_settings(ENGAGE_WEBHOOK_BATCH_SIZE=10)
def test_landed_events_are_posted_in_batches_with_basic_auth(api, receiver):
    hook_id = create_webhook(api, receiver, auth_type="basic", auth_credentials={"username": "u", "password": "p"})
    events = _events()
    data.land(events, batch=50)
    _flush()
    wanted = sorted(e["event_id"] for e in events if e["type"] in ("open", "click", "delivery"))
    posts = [r for r in receiver.posts("/hook") if r["headers"].get("X-MessageSystems-Batch-ID")]
    assert all(r["headers"]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode() for r in posts)
    batches = [json.loads(r["body"]) for r in posts]
    assert all(1 <= len(b) <= 10 for b in batches)
    records = [rec for b in batches for rec in b]
    got = sorted(next(iter(rec["msys"].values()))["event_id"] for rec in records)
    assert got == wanted
    click = next(
        rec["msys"]["track_event"] for rec in records if rec["msys"].get("track_event", {}).get("type") == "click"
    )
    assert isinstance(click["timestamp"], int) and isinstance(click["transmission_id"], str)
    assert next(iter(records[0])) == "msys"
    assert len({r["headers"]["X-MessageSystems-Batch-ID"] for r in posts}) == len(posts)
    assert api.get(f"/api/v1/webhooks/{hook_id}/batch-status").json()["results"] == []


def test_a_500_is_retried_with_backoff_and_the_same_batch(api, receiver):
    hook_id = create_webhook(api, receiver, path="/flaky")
    receiver.codes["/flaky"] = [500, 500, 200]
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=NOW)
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=NOW, lease=lease) == "pending"
    status = api.get(f"/api/v1/webhooks/{hook_id}/batch-status").json()["results"]
    assert [(s["batch_id"], s["attempts"], s["response_code"]) for s in status] == [(batch_id, 1, "500")]
    assert webhooks.webhook_batches_lease_due(now=NOW + timedelta(seconds=10)) == []  # backoff
    later = NOW + timedelta(seconds=31)
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=later) == "pending"
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=later + timedelta(seconds=61)) == "delivered"
    bodies = [r["body"] for r in receiver.posts("/flaky")][1:]
    ids = {r["headers"]["X-MessageSystems-Batch-ID"] for r in receiver.posts("/flaky")[1:]}
    assert len(bodies) == 3 and len(set(bodies)) == 1 and ids == {batch_id}
    batch = WebhookBatch.objects.get(pk=batch_id)
    assert (batch.attempts, batch.response_code, batch.state) == (3, "200", "delivered")


def test_batches_expire_after_the_retry_window(api, receiver):
    create_webhook(api, receiver, path="/down")
    receiver.codes["/down"] = [503]
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=NOW)
    state = webhooks.webhook_batch_deliver(batch_id=batch_id, now=NOW, lease=lease)
    at = WebhookBatch.objects.get(pk=batch_id).next_attempt_at
    while state == "pending":
        state = webhooks.webhook_batch_deliver(batch_id=batch_id, now=at)
        at = WebhookBatch.objects.get(pk=batch_id).next_attempt_at
    assert state == "expired" and at - NOW <= timedelta(hours=9)


def test_a_batch_whose_attempts_never_record_expires_after_the_retry_window(api, receiver, monkeypatch):
    hook_id = create_webhook(api, receiver)
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    leased = []

    def dies(*args, **kwargs):
        raise RuntimeError("the worker died mid-POST")

    monkeypatch.setattr(webhooks, "http_post", dies)
    for at in (NOW, NOW + timedelta(hours=4)):  # claimed, then the lease runs out with nothing recorded
        [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=at)
        leased.append(batch_id)
        with pytest.raises(RuntimeError):
            webhooks.webhook_batch_deliver(batch_id=batch_id, now=at, lease=lease)
    monkeypatch.undo()
    assert leased == [batch_id, batch_id]
    late = NOW + timedelta(hours=8, minutes=1)
    assert webhooks.webhook_batches_lease_due(now=late) == []
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=late) is None
    assert webhooks.webhook_batches_expire(now=late) == 1
    assert receiver.batches("/hook") == []
    status = api.get(f"/api/v1/webhooks/{hook_id}/batch-status").json()["results"]
    assert [(s["batch_id"], s["attempts"], s["state"]) for s in status] == [(batch_id, 0, "expired")]


def test_a_batch_made_before_an_outage_still_gets_one_attempt(api, receiver):
    create_webhook(api, receiver)
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    after_outage = NOW + timedelta(hours=9)
    assert webhooks.webhook_batches_expire(now=after_outage) == 0
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=after_outage)
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=after_outage, lease=lease) == "delivered"
    assert len(receiver.batches("/hook")) == 1


def test_oauth2_token_is_fetched_and_refetched_after_a_401(api, receiver):
    details = {"url": receiver.url + "/token", "body": {"client_id": "engage", "client_secret": "x"}}
    hook_id = create_webhook(api, receiver, path="/oauth", auth_type="oauth2", auth_request_details=details)
    (token_post,) = receiver.posts("/token")
    assert b"client_id=engage" in token_post["body"]
    assert Webhook.objects.get(pk=hook_id).auth_credentials["access_token"] == "tok-1"
    receiver.token_count = 5  # the target now wants tok-5: ours is expired
    data.land(_events(5), batch=100)
    _flush()
    posts = receiver.posts("/oauth")
    assert posts[-2]["headers"]["Authorization"] == "Bearer tok-1"
    assert posts[-1]["headers"]["Authorization"] == "Bearer tok-6"
    assert Webhook.objects.get(pk=hook_id).auth_credentials["access_token"] == "tok-6"
    assert WebhookBatch.objects.get().state == "delivered"


def test_replay_redelivers_the_same_events(api, receiver):
    hook_id = create_webhook(api, receiver)
    events = _events(10)
    data.land(events, batch=100)
    _flush()
    first = sorted(json.dumps(rec, sort_keys=True) for b in receiver.batches("/hook") for rec in b)
    body = {"from": "2024-02-01T00:00", "to": "2024-04-01T00:00"}
    assert api.post(f"/api/v1/webhooks/{hook_id}/replay", body, format="json").json()["results"]["events"] == len(first)
    _flush(NOW + timedelta(minutes=1))
    every = sorted(json.dumps(rec, sort_keys=True) for b in receiver.batches("/hook") for rec in b)
    assert every == sorted(first + first)
    ordered = sorted((e for e in events if e["type"] in ("open", "click", "delivery")), key=lambda e: e["timestamp"])
    pivot = ordered[len(ordered) // 2]
    count = api.post(f"/api/v1/webhooks/{hook_id}/replay", {"since_event_id": pivot["event_id"]}, format="json")
    assert count.json()["results"]["events"] == sum(e["timestamp"] > pivot["timestamp"] for e in ordered)
    assert_error(api.post(f"/api/v1/webhooks/{hook_id}/replay", {"since_event_id": "nope"}, format="json"), 400, "1200")


@override_settings(ANYMAIL={"WEBHOOK_SECRET": "anymail:s3cret"})
def test_anymail_parses_engage_batches_into_opened_and_clicked(api, receiver):
    from anymail.signals import tracking
    from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView

    create_webhook(api, receiver, auth_type="basic", auth_credentials={"username": "anymail", "password": "s3cret"})
    events = _events(15)
    data.land(events, batch=100)
    _flush()
    seen = []

    def handler(sender, event, esp_name, **kwargs):
        seen.append(event)

    tracking.connect(handler)
    try:
        view = SparkPostTrackingWebhookView.as_view()
        for post in [r for r in receiver.posts("/hook") if r["headers"].get("X-MessageSystems-Batch-ID")]:
            request = RequestFactory().post(
                "/anymail/sparkpost/tracking/", data=post["body"], content_type="application/json",
                HTTP_AUTHORIZATION=post["headers"]["Authorization"],
            )  # fmt: skip
            assert view(request).status_code == 200
    finally:
        tracking.disconnect(handler)
    clicks = [e for e in events if e["type"] == "click"]
    opens = [e for e in events if e["type"] == "open"]
    got_clicks = [e for e in seen if e.event_type == "clicked"]
    assert len(got_clicks) == len(clicks) and len([e for e in seen if e.event_type == "opened"]) == len(opens)
    by_id = {e["event_id"]: e for e in clicks}
    for event in got_clicks:
        source = by_id[event.event_id]
        assert event.message_id == source["transmission_id"]  # anymail's SparkPost message id is the transmission id
        assert event.recipient == source["raw_rcpt_to"]
        assert event.click_url == source["target_link_url"]
        assert event.metadata == source["rcpt_meta"]
        assert event.timestamp == source["timestamp"].replace(microsecond=0)


def test_a_leased_batch_is_queued_once_however_often_dispatch_runs(api, receiver):
    """Found by an attacker: with a slow target, each dispatch (every second) queued every due
    batch again: 20 delivery tasks per batch waited in the webhooks queue."""
    create_webhook(api, receiver, path="/slow")
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=NOW)
    for second in range(1, 30):
        assert webhooks.webhook_batches_lease_due(now=NOW + timedelta(seconds=second)) == []
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=NOW + timedelta(seconds=5), lease=lease) == "delivered"
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=NOW + timedelta(seconds=6), lease=lease) is None
    assert len(receiver.posts("/slow")) == 2  # the create's test POST, then the batch once


def test_a_lost_delivery_task_makes_its_batch_due_again_when_the_lease_runs_out(api, receiver):
    create_webhook(api, receiver, path="/lost")
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=NOW)
    assert [b for b, _ in webhooks.webhook_batches_lease_due(now=lease + timedelta(seconds=1))] == [batch_id]


def test_batches_of_a_deleted_webhook_are_not_posted(api, receiver):
    """Found by an attacker: removing a compromised endpoint did not stop its batches."""
    hook_id = create_webhook(api, receiver, path="/gone")
    data.land(_events(5), batch=100)
    webhooks.webhook_batches_build(now=NOW, force=True)
    [(batch_id, lease)] = webhooks.webhook_batches_lease_due(now=NOW)
    assert api.delete(f"/api/v1/webhooks/{hook_id}").status_code == 204
    assert webhooks.webhook_batch_deliver(batch_id=batch_id, now=NOW, lease=lease) == "expired"
    assert len(receiver.posts("/gone")) == 1  # the create's test POST only
    assert WebhookBatch.objects.get(pk=batch_id).failure == "webhook deleted"
