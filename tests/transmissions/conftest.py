from __future__ import annotations

import json
import uuid

import pytest

from tests.transmissions.helpers import outbox_events


@pytest.fixture
def events(settings):
    """A private event stream; call it to read the recorded events (decoded): those in the
    event outbox (the send path's) and those buffered in the stream (tracking hits')."""
    from django.db import connection

    from tracking.events import events_redis

    name = f"engage:test:tx-events:{uuid.uuid4().hex}"
    settings.ENGAGE_EVENT_STREAM = name

    def read() -> list[dict]:
        with connection.cursor() as cursor:
            stored = outbox_events(cursor)
        return stored + [json.loads(fields[b"e"]) for _id, fields in events_redis().xrange(name)]

    yield read
    events_redis().delete(name)
