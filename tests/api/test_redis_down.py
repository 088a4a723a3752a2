"""The API while Redis is down (issue 11: found by a newcomer, every call answered 500):
PostgreSQL-only work goes on. The per-key rate limit is not checked (it lives in Redis), and
an immediate transmission is stored and answered; the scheduler starts it once the broker is
back, since its start could not be queued."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

URL = "/api/v1/transmissions"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cache_down(monkeypatch):
    """The rate limiter's cache is a Redis nothing listens on."""
    from django.core.cache.backends.redis import RedisCache

    from engage.api.auth import ApiKeyRateThrottle

    monkeypatch.setattr(ApiKeyRateThrottle, "cache", RedisCache(f"redis://127.0.0.1:{_closed_port()}/0", {}))


def test_reads_and_writes_answer_while_the_rate_limit_cache_is_down(api, cache_down, caplog):
    assert api.get("/api/v1/templates").status_code == 200
    created = api.post("/api/v1/templates", {"name": "Hi", "content": {"from": "a@sender.test", "subject": "s",
                                                                        "text": "t"}}, format="json")  # fmt: skip
    assert created.status_code == 200, created.content
    assert "rate limit not checked" in caplog.text


def test_an_immediate_transmission_is_stored_when_its_start_cannot_be_queued(
    api, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from engage.celery import app as celery_app
    from transmissions.models import Transmission, TransmissionState
    from transmissions.services import transmissions_due

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", broker_down)  # what enqueuing the start calls
    body = {
        "content": {"from": "a@sender.test", "subject": "s", "text": "t"},
        "recipients": [{"address": "r@example.com"}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    tid = int(response.json()["results"]["id"])
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED
    assert "the scheduler will start it" in caplog.text
    assert tid in transmissions_due(now=timezone.now() + timedelta(seconds=61))
