"""Fixtures of the suppression tests that send: a running relay and a private event stream
(colleagues' tests and landers share this Redis)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def land(settings):
    """A private event stream; call it to land everything recorded (the outbox and the
    stream) into ``tracking_event`` as the lander does."""
    from analytics.landing import events_land, outbox_land
    from tracking.events import events_redis

    settings.ENGAGE_EVENT_STREAM = f"engage:test:suppression:{uuid.uuid4().hex}"

    def run() -> None:
        outbox_land()
        events_land(consumer="test")

    yield run
    events_redis().delete(settings.ENGAGE_EVENT_STREAM)
