"""``manage.py land_events [--once]``: a dedicated lander process (an alternative to the
``analytics.land_events`` beat task; both can run, they share the consumer group)."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand

from analytics.landing import event_partitions_ahead, land_once, lander_name

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Move buffered events from Redis into PostgreSQL (loops until stopped; --once for one batch)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="land one batch and exit")
        parser.add_argument("--max-events", type=int, default=5000, help="events per batch (default 5000)")

    def handle(self, *args: Any, once: bool = False, max_events: int = 5000, **options: Any) -> None:
        consumer = lander_name()
        if once:
            landed = land_once(consumer=consumer, block_ms=None, max_events=max_events) or 0
            self.stdout.write(f"landed {landed} events")
            return
        stopping = False

        def stop(_signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        event_partitions_ahead()
        next_partitions = time.monotonic() + 3600
        while not stopping:
            # A batch in flight is finished before the loop checks `stopping`.
            if land_once(consumer=consumer, max_events=max_events, block_ms=500) is None:
                time.sleep(1)  # a database or Redis outage: what was taken stays pending; retry
            if time.monotonic() >= next_partitions:
                event_partitions_ahead()
                next_partitions = time.monotonic() + 3600
