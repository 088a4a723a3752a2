"""Webhooks through the running worker and beat (SPEC B §8.3), posting to a real HTTP
receiver on loopback: a webhook created through the API gets the events of a sent, opened
and clicked message in ``{"msys": {...}}`` batches with its batch id and auth headers; a 500
is retried with backoff carrying the same batch; a replay re-delivers stored events."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.helpers import WEBHOOK_BATCH_SIZE, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BATCH_ID = "X-MessageSystems-Batch-ID"
TOKEN = "X-MessageSystems-Webhook-Token"
TARGET = "https://shop.example.com/offer"
CONTENT = {
    "from": "news@sender.test",
    "subject": "Hooks",
    "html": f'<html><body><p>Hi</p><a href="{TARGET}" data-msys-linkname="offer">Buy</a></body></html>',
    "text": "Hi",
}


@dataclass
class Post:
    at: float  # time.monotonic() on arrival
    path: str
    headers: Message
    body: bytes
    status: int  # what the receiver answered

    @property
    def batch_id(self) -> str | None:
        return self.headers.get(BATCH_ID)

    @property
    def records(self) -> list[dict]:
        return json.loads(self.body)

    @property
    def event_ids(self) -> list[str]:
        return [next(iter(record["msys"].values()))["event_id"] for record in self.records]


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST; batch POSTs (those with
    a batch id) are answered from a per-path queue of status codes, then 200."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.codes: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                queue = receiver.codes.get(self.path) if self.headers.get(BATCH_ID) else None
                status = queue.pop(0) if queue else 200
                receiver.posts.append(Post(time.monotonic(), self.path, self.headers, body, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def batches(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path == path and p.batch_id]

    def delivered_ids(self, path: str) -> list[str]:
        return [i for p in self.batches(path) if p.status == 200 for i in p.event_ids]


@pytest.fixture
def receiver(settings):
    """A receiver on loopback, allowed by its host:port here (the API's test POST); the
    worker allows 127.0.0.1/32 (conftest)."""
    server = Receiver()
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{server.server.server_address[1]}"]
    yield server
    server.server.shutdown()
    server.server.server_close()


def create_hook(api, receiver: Receiver, path: str, events: list[str], **fields) -> str:
    body = {"name": path, "target": receiver.url + path, "events": events, **fields}
    response = api.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]["id"]


def send(api, relay, addresses: list[str]) -> tuple[str, dict[str, Message]]:
    """POST a transmission and wait for the relay to get it; returns its id and the mail per address."""
    recipients = [{"address": address} for address in addresses]
    response = api.post("/api/v1/transmissions", {"content": CONTENT, "recipients": recipients}, format="json")
    assert response.status_code == 200, response.content
    mails = wait_for(
        lambda: (got := {r.rcpt_tos[0]: r.message for r in relay.received}) and set(addresses) <= set(got) and got,
        30, what="the relay to receive the messages",
    )  # fmt: skip
    return response.json()["results"]["id"], mails


def stored_ids(transmission_id: str, types: list[str], count: int) -> dict[str, str]:
    """Wait until the worker has landed ``count`` events of ``types``; returns event_id → type."""
    from tracking.models import Event

    def landed():
        rows = Event.objects.filter(transmission_id=transmission_id, type__in=types).values_list("event_id", "type")
        return len(rows) >= count and dict(rows)

    return wait_for(landed, 20, 0.1, what=f"{count} landed {types} events")


def test_opened_and_clicked_mail_reaches_webhooks_in_batches_with_their_auth_headers(api, client, e2e, relay, receiver):
    subscribed = ["click", "delivery", "initial_open", "open"]
    create_hook(api, receiver, "/token", subscribed, auth_token="s3cret")
    create_hook(
        api, receiver, "/basic", ["click"], auth_type="basic", auth_credentials={"username": "u", "password": "p"}
    )
    token_test, basic_test = receiver.posts
    assert token_test.path == "/token" and json.loads(token_test.body) == [{"msys": {}}] and not token_test.batch_id
    assert token_test.headers[TOKEN] == "s3cret"
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert basic_test.path == "/basic" and basic_test.headers["Authorization"] == basic

    addresses = ["hook-a@example.com", "hook-b@example.com"]
    tid, mails = send(api, relay, addresses)
    for address in addresses:
        html = next(p for p in mails[address].walk() if p.get_content_type() == "text/html").get_content()
        for pixel in re.findall(r'<img src="http://testserver(/q/[A-Za-z0-9_-]+)"', html):
            assert client.get(pixel).status_code == 200
        click = re.search(r'href="http://testserver(/f/[A-Za-z0-9_-]+)"', html).group(1)
        assert client.get(click).status_code == 302
    stored = stored_ids(tid, subscribed, 8)  # per recipient: delivery, initial_open, open, click
    assert sorted(stored.values()) == sorted(subscribed * 2)
    clicks = sorted(i for i, kind in stored.items() if kind == "click")

    wait_for(
        lambda: set(receiver.delivered_ids("/token")) >= set(stored) and set(receiver.delivered_ids("/basic")) >= set(clicks),
        15, what=lambda: f"the webhook batches, have {[p.event_ids for p in receiver.batches('/token')]}",
    )  # fmt: skip
    posts = receiver.batches("/token")
    assert sorted(receiver.delivered_ids("/token")) == sorted(stored)  # each subscribed event once, nothing else
    assert all(1 <= len(p.records) <= WEBHOOK_BATCH_SIZE for p in posts) and any(len(p.records) > 1 for p in posts)
    assert len({p.batch_id for p in posts}) == len(posts)
    assert all(p.headers[TOKEN] == "s3cret" and p.headers["Content-Type"] == "application/json" for p in posts)
    assert all("Authorization" not in p.headers for p in posts)
    records = {
        event["event_id"]: (category, event) for p in posts for r in p.records for category, event in r["msys"].items()
    }
    assert all(len(r["msys"]) == 1 for p in posts for r in p.records)
    assert {i: c for i, (c, _) in records.items()} == {
        i: "message_event" if kind == "delivery" else "track_event" for i, kind in stored.items()
    }
    _, click = records[clicks[0]]
    assert (click["type"], click["transmission_id"], click["target_link_url"]) == ("click", tid, TARGET)
    assert click["rcpt_to"] in addresses and isinstance(click["timestamp"], int)

    basic_posts = receiver.batches("/basic")
    assert sorted(receiver.delivered_ids("/basic")) == clicks
    assert all(p.headers["Authorization"] == basic and TOKEN not in p.headers for p in basic_posts)


def test_a_500_makes_the_worker_retry_with_backoff_and_the_same_batch(api, e2e, relay, receiver):
    hook_id = create_hook(api, receiver, "/flaky", ["delivery"])
    receiver.codes["/flaky"] = [500, 503]
    tid, _ = send(api, relay, ["flaky@example.com"])
    (event_id,) = stored_ids(tid, ["delivery"], 1)

    wait_for(lambda: receiver.delivered_ids("/flaky"), 15, what="the batch to be delivered after two failures")
    first, second, third = receiver.batches("/flaky")
    assert [p.status for p in (first, second, third)] == [500, 503, 200]
    assert first.batch_id == second.batch_id == third.batch_id
    assert first.body == second.body == third.body and first.event_ids == [event_id]
    # Backoff: 1 s after the first failure, 2 s after the second (ENGAGE_WEBHOOK_RETRY_BASE_SECONDS=1).
    assert second.at - first.at >= 0.9 and third.at - second.at >= 1.9
    status = api.get(f"/api/v1/webhooks/{hook_id}/batch-status").json()["results"]
    assert [(s["batch_id"], s["attempts"], s["response_code"], s["state"]) for s in status] == [
        (first.batch_id, 3, "200", "delivered")
    ]


def test_replay_redelivers_stored_events_through_the_worker(api, e2e, relay, receiver):
    hook_id = create_hook(api, receiver, "/replay", ["delivery", "injection"])
    began = datetime.now(UTC)  # the event table outlives each test: replay only this test's window
    tid, _ = send(api, relay, ["replay@example.com"])
    stored = stored_ids(tid, ["delivery", "injection"], 2)
    wait_for(lambda: sorted(receiver.delivered_ids("/replay")) == sorted(stored), 15, what="the first delivery")
    first = receiver.batches("/replay")
    originals = {e["event_id"]: r for p in first for r in p.records for e in r["msys"].values()}

    window = {"from": began.isoformat(), "to": datetime.now(UTC).isoformat()}
    replay = api.post(f"/api/v1/webhooks/{hook_id}/replay", window, format="json")
    assert replay.status_code == 200, replay.content
    assert replay.json()["results"]["events"] == 2
    wait_for(lambda: len(receiver.delivered_ids("/replay")) == 4, 15, what="the replayed batch")
    again = receiver.batches("/replay")[len(first) :]
    assert not {p.batch_id for p in again} & {p.batch_id for p in first}  # a new batch, same records
    assert sorted(json.dumps(r, sort_keys=True) for p in again for r in p.records) == sorted(
        json.dumps(r, sort_keys=True) for r in originals.values()
    )

    injection = next(i for i, kind in stored.items() if kind == "injection")
    since = api.post(f"/api/v1/webhooks/{hook_id}/replay", {"since_event_id": injection}, format="json")
    assert since.json()["results"]["events"] == 1
    wait_for(lambda: len(receiver.delivered_ids("/replay")) == 5, 15, what="the replay after the injection")
    assert receiver.delivered_ids("/replay")[-1] == next(i for i, kind in stored.items() if kind == "delivery")


def test_webhooks_taking_the_same_events_each_get_them_once_and_a_later_one_none(api, e2e, relay, receiver):
    """Three webhooks, one feed: each gets every delivery of the send once (the same bytes,
    in its own batches); a webhook created after they landed gets none of them."""
    paths = ["/same-a", "/same-b", "/same-c"]
    for path in paths:
        create_hook(api, receiver, path, ["delivery"])
    addresses = [f"same-{n}@example.com" for n in range(7)]
    tid, _ = send(api, relay, addresses)
    stored = stored_ids(tid, ["delivery"], len(addresses))
    wait_for(
        lambda: all(sorted(receiver.delivered_ids(path)) == sorted(stored) for path in paths),
        15, what=lambda: f"every webhook's batches, have {[receiver.delivered_ids(p) for p in paths]}",
    )  # fmt: skip
    bodies = [sorted(p.body for p in receiver.batches(path)) for path in paths]
    assert bodies[0] == bodies[1] == bodies[2]
    assert len({p.batch_id for path in paths for p in receiver.batches(path)}) == sum(len(b) for b in bodies)

    create_hook(api, receiver, "/later", ["delivery"])
    time.sleep(3)  # three beat dispatches
    assert receiver.batches("/later") == []
    assert all(sorted(receiver.delivered_ids(path)) == sorted(stored) for path in paths)  # nothing twice
