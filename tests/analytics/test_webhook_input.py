"""Webhook request bodies checked at the edge (issue 10): every bad field is a 4xx envelope
naming it, before any test POST is sent or anything is stored."""

from __future__ import annotations

import pytest

from analytics.models import Webhook
from tests.analytics.helpers import create_webhook


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["errors"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "n" * 1025}, "name"),
        ({"name": ""}, "name"),
        ({"events": []}, "events"),
        ({"events": ["open", "teleport"]}, "events[1]"),
        ({"auth_type": "kerberos"}, "auth_type"),
        ({"custom_headers": {"X-A": "v\r\nX-Injected: yes"}}, "custom_headers.X-A"),
        ({"custom_headers": {"Bad Name": "v"}}, "custom_headers.Bad Name"),
        ({"active": "yes"}, "active"),
        ({"target": "t" * 2049}, "target"),
    ],
)
def test_bad_field_is_422_naming_it_and_nothing_is_posted_or_saved(api, receiver, fields, field):
    body = {"name": "Hook", "target": receiver.url + "/hook", "events": ["open"], **fields}
    detail = error(api.post("/api/v1/webhooks", body, format="json"), 422)
    assert detail["code"] == "1300"
    assert detail["description"].startswith(field)
    assert receiver.posts("/hook") == []
    assert Webhook.objects.count() == 0


def test_missing_target_is_422_1400(api, db):
    detail = error(api.post("/api/v1/webhooks", {"name": "x", "events": ["open"]}, format="json"), 422)
    assert detail["code"] == "1400"
    assert detail["description"].startswith("target")


def test_update_checks_the_same_fields(api, receiver):
    hook_id = create_webhook(api, receiver)
    detail = error(api.put(f"/api/v1/webhooks/{hook_id}", {"name": "n" * 1025}, format="json"), 422)
    assert detail["description"].startswith("name")
    assert Webhook.objects.get().name == "Hook"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": "2024-01-01T00:00", "timezone": "Nope/Zone"}, "timezone"),
        ({"from": "2024-01-01T00:00", "timezone": "x" * 300}, "timezone"),
        ({"from": "0001-01-01T00:00+14:00"}, "from"),
        ({"from": "yesterday"}, "from"),
    ],
)
def test_replay_with_a_bad_window_is_422_naming_it(api, receiver, body, field):
    hook_id = create_webhook(api, receiver)
    detail = error(api.post(f"/api/v1/webhooks/{hook_id}/replay", body, format="json"), 422)
    assert detail["description"].startswith(field)


@pytest.mark.parametrize("query", ["timezone=Nope/Zone", "limit=0", "limit=abc", "limit=10001"])
def test_batch_status_bad_query_is_400(api, receiver, query):
    hook_id = create_webhook(api, receiver)
    detail = error(api.get(f"/api/v1/webhooks/{hook_id}/batch-status?{query}"), 400)
    assert detail["code"] == "1200"


@pytest.mark.parametrize(
    "headers",
    [
        {"content-length": "0"},
        {"Transfer-Encoding": "chunked"},
        {"host": "internal.example"},
        {"Content-Type": "text/plain"},
        {"X-MessageSystems-Batch-ID": "forged"},
        {"X-A": "1", "x-a": "2"},
    ],
)
def test_custom_headers_that_frame_route_or_repeat_are_refused(api, receiver, headers):
    body = {"name": "Hook", "target": receiver.url + "/hook", "events": ["open"], "custom_headers": headers}
    detail = error(api.post("/api/v1/webhooks", body, format="json"), 422)
    assert detail["description"].startswith("custom_headers")
    assert receiver.posts("/hook") == []


def test_a_stored_row_cannot_smuggle_either(api, receiver):
    """A row stored before the rule (or written around the API) still posts one framing."""
    hook_id = create_webhook(api, receiver, custom_headers={"X-Tenant": "t1"})
    Webhook.objects.filter(pk=hook_id).update(
        custom_headers={
            "content-length": "0",
            "Transfer-Encoding": "chunked",
            "host": "internal.example",
            "content-type": "x/y",
            "X-Split": "a\r\nX-Injected: 1",
            "x-tenant": "t1",
            "X-TENANT": "t2",
        }
    )
    validated = api.post(f"/api/v1/webhooks/{hook_id}/validate", {"message": {"msys": {}}}, format="json")
    assert validated.status_code == 200
    posted = receiver.posts("/hook")[-1]["headers"]
    assert posted.get_all("Content-Length") == [str(len(b'{"msys": {}}'))]
    assert posted.get_all("Transfer-Encoding") is None
    assert posted.get_all("Host") == [receiver.url.removeprefix("http://")]
    assert posted.get_all("Content-Type") == ["application/json"]
    assert posted.get_all("X-Injected") is None and posted.get_all("X-Split") is None
    assert len([value for name, value in posted.items() if name.lower() == "x-tenant"]) == 1
