"""Template preview stops at ENGAGE_MAX_MESSAGE_BYTES, headers included (issue 11)."""

from __future__ import annotations

import time

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_preview_of_looping_headers_past_the_message_cap_is_422_3001_saying_the_limit(api, settings):
    settings.ENGAGE_MAX_MESSAGE_BYTES = 100_000
    headers = {f"X-Loop-{i}": "{{each big}}{{loop_var}}{{end}}" for i in range(20)}
    content = {"from": "shop@example.com", "subject": "Hi", "text": "t", "headers": headers}
    assert api.post("/api/v1/templates", {"id": "loops", "content": content}, format="json").status_code == 200
    data = {"substitution_data": {"big": ["x" * 1000] * 50}}  # 50 KB per header, 1 MB in all
    error = assert_error(api.post("/api/v1/templates/loops/preview?draft=true", data, format="json"), 422, "3001")
    assert "100000 bytes" in error["description"] and "ENGAGE_MAX_MESSAGE_BYTES" in error["description"]
    assert error["limit"] == 100_000
    assert error["part"] == "Header:X-Loop-1"


def test_preview_under_the_message_cap_renders(api, settings):
    settings.ENGAGE_MAX_MESSAGE_BYTES = 100_000
    content = {"from": "shop@example.com", "subject": "Hi", "text": "t", "headers": {"X-A": "{{v}}"}}
    api.post("/api/v1/templates", {"id": "small", "content": content}, format="json")
    response = api.post("/api/v1/templates/small/preview?draft=true", {"substitution_data": {"v": "ok"}}, format="json")
    assert response.status_code == 200
    assert response.json()["results"]["headers"] == {"X-A": "ok"}


def test_preview_of_many_looping_headers_stops_at_the_message_loop_budget(api):
    """An attacker's 10,000 headers, each two nested loops under the per-part limit, took a
    preview 102 s; the loop budget is the whole message's, so it stops at once."""
    headers = {f"X-Loop-{i}": "{{each a}}{{each a}}{{end}}{{end}}" for i in range(2000)}
    content = {"from": "shop@example.com", "subject": "Hi", "text": "t", "headers": headers}
    assert api.post("/api/v1/templates", {"id": "loopy", "content": content}, format="json").status_code == 200
    started = time.monotonic()
    response = api.post("/api/v1/templates/loopy/preview?draft=true", {"substitution_data": {"a": list(range(315))}},
                        format="json")  # fmt: skip
    error = assert_error(response, 422, "3001")
    assert "too many loop iterations" in error["description"]
    assert time.monotonic() - started < 10
