from __future__ import annotations

from datetime import timedelta

import pytest

from tests.analytics import data
from tests.helpers import assert_error

S = data.START
WINDOW = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}


@pytest.fixture
def events(db):
    generated = data.generate(messages=60)
    data.land(generated, shuffle=False)
    return generated


def _newest_first(events):
    return sorted(events, key=lambda e: (e["timestamp"], int(e["event_id"])), reverse=True)


def test_cursor_paging_walks_every_event_newest_first_once(api, events):
    seen, url, pages = [], "/api/v1/events/message", 0
    params = {**WINDOW, "per_page": "37"}
    while True:
        body = api.get(url, params).json() if params else api.get(url).json()
        params = None
        pages += 1
        assert body["total_count"] == len(events)
        seen += body["results"]
        if not body["links"]:
            break
        url = body["links"]["next"]
        assert url.startswith("/api/v1/events/message?") and "cursor=" in url
    assert pages == -(-len(events) // 37)
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in _newest_first(events)]


def test_events_have_the_flat_sparkpost_shape(api, events):
    click = next(e for e in events if e["type"] == "click")
    body = api.get("/api/v1/events/message", {**WINDOW, "event_ids": click["event_id"]}).json()
    (got,) = body["results"]
    assert got["type"] == "click" and got["event_id"] == click["event_id"]
    assert got["timestamp"] == click["timestamp"].isoformat(timespec="milliseconds")
    assert got["timestamp"].endswith("+00:00")
    assert got["target_link_url"] == click["target_link_url"]
    assert got["rcpt_meta"] == click["rcpt_meta"] and got["rcpt_tags"] == ["t1"]
    assert got["transactional"] in ("1", "0")
    assert "bounce_class" not in got
    assert body["links"] == {}
    bounce = next(e for e in events if e["type"] == "bounce")
    got = api.get("/api/v1/events/message", {**WINDOW, "event_ids": bounce["event_id"]}).json()["results"][0]
    assert got["bounce_class"] == bounce["bounce_class"] and "target_link_url" not in got


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"events": "click,open"}, lambda e: e["type"] in ("click", "open")),
        ({"recipients": "USER3@" + "x"}, lambda e: False),
        ({"campaigns": "welcome"}, lambda e: e["campaign_id"] == "welcome"),
        (
            {"templates": "tpl-b", "events": "delivery"},
            lambda e: e["template_id"] == "tpl-b" and e["type"] == "delivery",
        ),
        ({"recipient_domains": "gmail.com"}, lambda e: e["rcpt_to"].endswith("@gmail.com")),
        ({"subjects": "offer 3"}, lambda e: e["subject"] == "Offer 3"),
        ({"reasons": "try later"}, lambda e: "try later" in e.get("reason", "")),
        ({"bounce_classes": "10|30", "delimiter": "|"}, lambda e: e.get("bounce_class") in ("10", "30")),
        ({"transmissions": "1003"}, lambda e: e["transmission_id"] == "1003"),
        ({"from_addresses": "news@sender.example"}, lambda e: True),
    ],
)
def test_filters(api, events, params, predicate):
    body = api.get("/api/v1/events/message", {**WINDOW, **params, "per_page": "10000"}).json()
    expected = [e["event_id"] for e in _newest_first(events) if predicate(e)]
    assert [e["event_id"] for e in body["results"]] == expected
    assert body["total_count"] == len(expected)


def test_recipients_and_messages_filters(api, events):
    first = events[0]
    body = api.get("/api/v1/events/message", {**WINDOW, "recipients": first["rcpt_to"].upper()}).json()
    assert {e["message_id"] for e in body["results"]} == {first["message_id"]}
    body = api.get("/api/v1/events/message", {**WINDOW, "messages": first["message_id"]}).json()
    assert len(body["results"]) == sum(e["message_id"] == first["message_id"] for e in events)


def test_from_is_inclusive_and_to_exclusive(api, events):
    stamp = events[0]["timestamp"]
    params = {"from": stamp.isoformat(), "to": (stamp + timedelta(seconds=1)).isoformat()}
    ids = {e["event_id"] for e in api.get("/api/v1/events/message", params).json()["results"]}
    assert events[0]["event_id"] in ids
    params = {"from": (stamp - timedelta(minutes=1)).isoformat(), "to": stamp.isoformat()}
    ids = {e["event_id"] for e in api.get("/api/v1/events/message", params).json()["results"]}
    assert events[0]["event_id"] not in ids


@pytest.mark.parametrize(
    "params",
    [
        {"per_page": "0"},
        {"per_page": "10001"},
        {"per_page": "many"},
        {"from": "last tuesday"},
        {"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        {"events": "click,teleport"},
        {"bounce_classes": "hard"},
        {"cursor": "not-a-cursor"},
        {"sending_ips": "1.2.3.4"},
    ],
)
def test_bad_params_are_400(api, db, params):
    error = assert_error(api.get("/api/v1/events/message", params), 400, "1200")
    assert error["description"]


def test_message_events_pages_with_older_names_and_timezone(api, events):
    params = {"from": "2024-02-29T19:00", "to": "2024-03-07T19:00", "timezone": "America/New_York", "per_page": "25"}
    all_ids = [e["event_id"] for e in _newest_first(events)]
    got = []
    for page in range(1, -(-len(events) // 25) + 1):
        body = api.get("/api/v1/message-events", {**params, "page": str(page)}).json()
        assert body["total_count"] == len(events)
        got += body["results"]
    assert [e["event_id"] for e in got] == all_ids
    assert got[0]["timestamp"].endswith("-05:00")
    one = events[3]
    body = api.get(
        "/api/v1/message-events",
        {**params, "campaign_ids": one["campaign_id"] or "none", "message_ids": one["message_id"], "per_page": "1000"},
    ).json()
    assert {e["message_id"] for e in body["results"]} <= {one["message_id"]}
    body = api.get("/api/v1/message-events", {**params, "reason": "%no such%"}).json()
    assert body["results"] and all(e["type"] == "bounce" for e in body["results"])


def test_events_need_the_message_events_grant(api_with, db):
    assert_error(api_with("metrics/view").get("/api/v1/events/message"), 403, "1100")
    assert api_with("message_events/view").get("/api/v1/message-events").status_code == 200
