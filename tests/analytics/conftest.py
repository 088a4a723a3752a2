"""Fixtures shared by the analytics tests."""

from __future__ import annotations

import pytest

from tests.analytics.helpers import Receiver


@pytest.fixture
def receiver(settings):
    """A local receiver, on the webhook allow-list by its host:port (loopback is refused otherwise)."""
    r = Receiver()
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.server.server_address[1]}"]
    yield r
    r.server.shutdown()
