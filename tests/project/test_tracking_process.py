"""A tracking web process (ENGAGE_SERVE=tracking, engage/urls_tracking.py) serves opens,
clicks and unsubscribes alone; the API process keeps serving them for links already sent."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.tracking.conftest import MESSAGE, NEW_KEY, OLD_KEY, TEST_REDIS_DB

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tokens(settings):
    """Tokens of one message, their events buffered in a private stream (deleted afterwards)."""
    from tracking.events import events_redis
    from tracking.signing import tracking_signer

    settings.REDIS_URL = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}"))
    settings.ENGAGE_EVENT_STREAM = f"engage:test:events:{uuid.uuid4().hex}"
    settings.ENGAGE_TRACKING_KEYS = [OLD_KEY, NEW_KEY]
    yield tracking_signer().for_message(issued_at=int(time.time()), **MESSAGE)
    events_redis().delete(settings.ENGAGE_EVENT_STREAM)


@pytest.mark.parametrize("urlconf", ["engage.urls_tracking", "engage.urls"])
def test_it_serves_opens_clicks_and_unsubscribes(client, settings, tokens, urlconf):
    settings.ROOT_URLCONF = urlconf
    response = client.get(f"/f/{tokens.click('https://example.com/a?b=1', 'Link')}")
    assert (response.status_code, response["Location"]) == (302, "https://example.com/a?b=1")
    assert client.get(f"/q/{tokens.open()}").status_code == 200
    assert client.get(f"/u/{tokens.open('unsubscribe')}").status_code == 200
    assert client.get("/q/not-a-token").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/templates", "/api/v1/transmissions", "/admin/", "/report/", "/", "/x"])
@pytest.mark.django_db  # /api/ middleware (statement timeout) may touch the connection first
@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_every_other_path_with_a_plain_404(client, settings, path, debug):
    settings.ROOT_URLCONF, settings.DEBUG = "engage.urls_tracking", debug
    response = client.get(path, HTTP_AUTHORIZATION="0" * 40)
    assert (response.status_code, response.content) == (404, b"Not Found\n")
    assert client.post(path, b"{}", content_type="application/json").status_code == 404


def test_an_unknown_serve_value_stops_the_process_naming_it():
    result = subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "ENGAGE_SERVE": "api"})  # fmt: skip
    assert result.returncode != 0
    assert "ENGAGE_SERVE='api' is not one of all, tracking" in result.stderr
