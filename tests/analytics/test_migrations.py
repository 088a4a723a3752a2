"""Analytics migrations unapplied keep the figures right (issue 15's link positions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from analytics.ingest import event_row, events_insert
from tracking.events import event_id_new

BEFORE_POSITIONS = [("analytics", "0005_webhook_feed")]
URL = "https://example.com/offer"


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _click(message_id: str, position: int, at: datetime) -> dict:
    return event_row({
        "event_id": event_id_new(), "type": "click", "timestamp": at.timestamp(), "message_id": message_id,
        "transmission_id": "7", "campaign_id": "spring", "template_id": "news", "rcpt_to": f"{message_id}@example.com",
        "target_link_url": URL, "engage_link_position": str(position),
    })  # fmt: skip


@pytest.mark.slow  # migrating twice takes ~10 s
def test_unapplying_link_positions_counts_a_message_once_per_link(transactional_db):
    clicks = [
        _click("m1", 1, datetime(2026, 11, 2, 10, 10, tzinfo=UTC)),  # the header button
        _click("m1", 2, datetime(2026, 11, 2, 11, 20, tzinfo=UTC)),  # the same URL in the footer, later
        _click("m1", 2, datetime(2026, 11, 2, 11, 25, tzinfo=UTC)),
        _click("m2", 2, datetime(2026, 11, 2, 11, 30, tzinfo=UTC)),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        events_insert(cursor, clicks)
    try:
        apps = _migrate(BEFORE_POSITIONS)
        rollup = apps.get_model("analytics", "LinkRollupHourly").objects.filter(link_url=URL)
        by_hour = {row.hour.hour: (row.clicked, row.unique_clicked) for row in rollup}
        # m1 counts once, in the hour of its first click on the URL; m2 once; every click stays.
        assert by_hour == {10: (1, 1), 11: (3, 1)}
        firsts = apps.get_model("analytics", "MessageLinkClick").objects.filter(link_url=URL)
        assert {row.message_id: row.first_click.hour for row in firsts} == {"m1": 10, "m2": 11}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
