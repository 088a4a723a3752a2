"""The API while its Redis (the rate limit's counters) accepts connections and never answers."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import HungServer, fails_if_hung

pytestmark = pytest.mark.django_db


@pytest.fixture
def hung_cache(settings):
    """Django's cache pointed at a Redis that accepts connections and never answers, with the
    project's own cache options (its socket timeouts)."""
    server = HungServer()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    yield server
    server.close()


def test_an_api_request_is_answered_when_the_rate_limit_redis_never_answers(api, hung_cache, caplog):
    """The rate limit is not checked (logged) and the request answered, within the cache's
    socket timeout, not held forever (before the timeouts, it never was)."""
    with caplog.at_level(logging.WARNING, logger="engage.api.throttle"), fails_if_hung(15):
        response = api.get("/api/v1/transmissions")
    assert response.status_code == 200, response.content[:300]
    assert hung_cache.connections, "the request reached the hung Redis"
    assert any("API rate limit not checked" in record.getMessage() for record in caplog.records)
