"""The SparkPost wire format: one error envelope for every failure, no redirects, no DRF detail."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_404_envelope(api):
    error = assert_error(api.get("/api/v1/no-such-thing"), 404, "1101")
    assert "/api/v1/no-such-thing" in error["description"]


def test_malformed_json_is_400_envelope(api):
    response = api.generic("POST", "/api/v1/templates", b'{"name": ', content_type="application/json")
    error = assert_error(response, 400, "1300")
    assert "json" in error["description"].lower()


def test_body_that_is_not_utf8_is_400_1305(api):
    response = api.generic("POST", "/api/v1/templates", b'{"name": "\xff"}', content_type="application/json")
    assert_error(response, 400, "1305")


def test_wrong_content_type_is_415_1700(api):
    response = api.generic("POST", "/api/v1/templates", b"name=x", content_type="application/x-www-form-urlencoded")
    error = assert_error(response, 415, "1700")
    assert error["description"] == (
        "The Content-Type 'application/x-www-form-urlencoded' is not supported; send application/json"
    )


def test_wrong_method_is_405_1102(api):
    assert_error(api.patch("/api/v1/templates", {}, format="json"), 405, "1102")


@override_settings(ENGAGE_MAX_REQUEST_BYTES=100)
def test_oversized_body_is_413(api):
    response = api.post("/api/v1/templates", {"name": "x" * 500}, format="json")
    assert_error(response, 413, "1300")


def test_json_array_body_is_rejected_with_envelope(api):
    response = api.generic("POST", "/api/v1/templates", b"[1, 2]", content_type="application/json")
    assert response.status_code in (400, 422)
    assert "errors" in response.json()


@pytest.mark.parametrize("path", ["/api/v1/templates", "/api/v1/templates/"])
def test_routes_work_with_and_without_trailing_slash_and_never_redirect(api, path):
    response = api.get(path)
    assert response.status_code == 200
    assert "results" in response.json()


def test_post_with_trailing_slash_is_not_redirected(api):
    response = api.post("/api/v1/templates/", {}, format="json")
    assert response.status_code not in (301, 302, 307, 308)
    assert "errors" in response.json()


def test_no_drf_detail_key_ever_reaches_a_client(api, client):
    for response in (client.get("/api/v1/templates"), api.patch("/api/v1/templates", {}), api.get("/api/v1/x/y")):
        assert "detail" not in response.json()


def test_throttled_requests_are_429_envelope_with_retry_after(api, monkeypatch):
    monkeypatch.setattr("engage.api.auth.ApiKeyRateThrottle.rate", "2/minute", raising=False)
    assert api.get("/api/v1/templates").status_code == 200
    assert api.get("/api/v1/templates").status_code == 200
    response = api.get("/api/v1/templates")
    assert_error(response, 429, "1502")
    assert int(response["Retry-After"]) > 0


def test_unexpected_server_error_is_500_envelope_without_trace(api, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("engage.api.auth.api_key_get_active", boom)
    response = api.get("/api/v1/templates")
    error = assert_error(response, 500, "1500")
    assert "secret" not in response.content.decode()
    assert error["message"] == "internal server error"
