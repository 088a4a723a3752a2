"""Shared fixtures. Tests that touch storage use the real PostgreSQL and Redis named by
DATABASE_URL / REDIS_URL (scripts/test sets them, embedded or not)."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_key(db):
    """Create an API key with the given grants; returns the raw key."""
    from api_keys.services import api_key_create

    def make(*grants: str, label: str = "test") -> str:
        from api_keys.grants import ALL_GRANTS

        _key, raw = api_key_create(label=label, grants=list(grants) if grants else list(ALL_GRANTS))
        return raw

    return make


@pytest.fixture
def api(make_key):
    """An API client authenticated with a key holding every grant."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=make_key())
    return client


@pytest.fixture
def api_with(make_key):
    """Factory: an API client whose key holds only the given grants."""
    from rest_framework.test import APIClient

    def make(*grants: str):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=make_key(*grants) if grants else "")
        return client

    return make


@pytest.fixture(autouse=True)
def _clear_throttle_cache(request):
    """Forget API rate-limit counters between tests, and nothing else: Redis also holds the
    Celery queue and the event buffer, so never FLUSHDB here."""
    if "db" in request.fixturenames or "api" in request.fixturenames:
        from django.core.cache import cache

        client = cache._cache.get_client()
        keys = list(client.scan_iter(match="*throttle_api_key*", count=1000))
        if keys:
            client.delete(*keys)
    yield
