from __future__ import annotations

import json
import uuid

import pytest

from tests.transmissions.helpers import outbox_events


@pytest.fixture
def events(settings):
    """A private event stream; call it to read the recorded events (decoded): those in the
    event outbox (the send path's) and those in the stream (tracking hits', once shipped)."""
    from django.db import connection

    from tracking.events import events_redis
    from tracking.hitlog import hits_flush

    name = f"engage:test:tx-events:{uuid.uuid4().hex}"
    settings.ENGAGE_EVENT_STREAM = name

    def read() -> list[dict]:
        hits_flush()  # the hits this process served (tracking/hitlog.py ships them within 20 ms)
        with connection.cursor() as cursor:
            stored = outbox_events(cursor)
        return stored + [json.loads(fields[b"e"]) for _id, fields in events_redis().xrange(name)]

    yield read
    events_redis().delete(name)
