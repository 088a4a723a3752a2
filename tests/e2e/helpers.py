"""Helpers shared by the end-to-end tests: polling for what the worker does, and the
worker's settings the tests count with."""

from __future__ import annotations

import time

# The worker's webhook batches hold at most this many events (tests/e2e/test_webhooks_e2e.py).
WEBHOOK_BATCH_SIZE = 5


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """The first true value of ``predicate()``, polled every ``interval`` seconds; fails naming
    ``what`` when ``timeout`` seconds pass without one (a bound that only catches a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
