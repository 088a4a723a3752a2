"""Fixtures of the tracking tests: a private event stream per test (colleagues' tests and
landers share this Redis), known tracking keys, and tokens for one message."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.tracking.helpers import MESSAGE, NEW_KEY, OLD_KEY, TEST_REDIS_DB, WsgiClient


@pytest.fixture(autouse=True)
def spool_replay_joined():
    """No spool replay thread (``tracking.outbox.spool_replay_soon``) outlives its test: it
    reads the test's settings."""
    yield
    from tracking import outbox

    thread = outbox._spool_replayer["thread"]
    if thread is not None:
        thread.join(60)
        assert not thread.is_alive(), "the spool replay thread is hung"


@pytest.fixture
def event_stream(settings):
    """A fresh Redis stream (and a short reclaim delay) for this test; deleted afterwards."""
    from tracking.events import events_redis
    from tracking.hitlog import hits_flush

    name = f"engage:test:events:{uuid.uuid4().hex}"
    # Its own Redis database, apart from the broker and the cache of other tests.
    settings.REDIS_URL = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}"))
    settings.ENGAGE_EVENT_STREAM = name
    settings.ENGAGE_EVENT_RECLAIM_MS = 30000
    settings.ENGAGE_TRACKING_KEYS = [OLD_KEY, NEW_KEY]
    yield name
    hits_flush()  # nothing of this test's is shipped into the next test's stream
    events_redis().delete(name)


@pytest.fixture
def buffered(event_stream):
    """Returns the events in the stream (decoded), oldest first, once this process's hit log
    has shipped what it holds (``tracking.hitlog``: hits reach the stream within 20 ms)."""
    from tracking.events import events_redis
    from tracking.hitlog import hits_flush

    def read() -> list[dict]:
        hits_flush()
        return [json.loads(fields[b"e"]) for _id, fields in events_redis().xrange(event_stream)]

    return read


@pytest.fixture
def tokens():
    """The tokens of one message, signed now with the configured (newest) key."""
    from tracking.signing import tracking_signer

    return tracking_signer().for_message(issued_at=int(time.time()), **MESSAGE)


@pytest.fixture
def rollup_calls(monkeypatch):
    """The rows of every landing batch that inserted something new (what the rollups got)."""
    from analytics import ingest

    calls: list[list[dict]] = []
    real = ingest.events_insert

    def recording(cursor, events, **kwargs):
        inserted = real(cursor, events, **kwargs)
        if inserted:
            calls.append(list(inserted))
        return inserted

    monkeypatch.setattr(ingest, "events_insert", recording)
    return calls


@pytest.fixture(params=["django-client", "tracking-process"])
def client(request, client, settings):
    """Each tracking test twice: through Django's test client (the API process's routes and
    middleware), and through the WSGI stack of a tracking process (``ENGAGE_SERVE=tracking``),
    where ``/f/`` and ``/q/`` take the fast path (``engage/fastpath.py``)."""
    if request.param == "django-client":
        return client
    settings.MIDDLEWARE = settings.TRACKING_MIDDLEWARE
    settings.ROOT_URLCONF = "engage.urls_tracking"
    return WsgiClient()
