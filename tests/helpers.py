"""Assertion helpers for the SparkPost wire format."""

from __future__ import annotations


def assert_error(response, status: int, code: str) -> dict:
    """The response is the SparkPost error envelope with this status and string code; returns the error."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert set(body) >= {"errors"}, body
    assert isinstance(body["errors"], list) and body["errors"], body
    error = body["errors"][0]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["description"], str)
    return error
