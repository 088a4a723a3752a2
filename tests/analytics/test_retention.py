"""Retention drops whole day partitions of raw events and trims rollups past their window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction

from analytics.ingest import event_row, events_insert
from analytics.models import MessageEngagement, RollupHourly
from analytics.retention import event_retention_apply, partitions_expired, rollup_retention_apply
from tracking.models import Event

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def land(*events: dict) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        events_insert(cursor, [event_row(event) for event in events])


def event(event_id: str, when: datetime, kind: str = "open") -> dict:
    return {
        "event_id": event_id,
        "type": kind,
        "timestamp": when,
        "message_id": f"m{event_id}",
        "rcpt_to": "a@example.com",
        "campaign_id": "c",
    }


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname ~ '^tracking_event_[0-9]{8}$'")
        return {row[0] for row in cursor.fetchall()}


def test_partitions_expired_keeps_the_cutoff_day_and_later():
    names = ["tracking_event_20260619", "tracking_event_20260620", "tracking_event_20260621"]
    assert partitions_expired(names, cutoff=date(2026, 6, 20)) == ["tracking_event_20260619"]


@pytest.mark.django_db
def test_events_older_than_the_retention_go_with_their_day_partition():
    # Empty day partitions an earlier test committed events into (its rows emptied, the
    # partitions kept) go first: under pytest-xdist another mix of files runs before this one.
    event_retention_apply(now=NOW, keep_days=10)
    land(
        event("1", NOW - timedelta(days=12)), event("2", NOW - timedelta(days=11)), event("3", NOW - timedelta(days=2))
    )
    assert {"tracking_event_20260618", "tracking_event_20260619", "tracking_event_20260628"} <= partitions()

    dropped = event_retention_apply(now=NOW, keep_days=10)

    assert dropped == ["tracking_event_20260618", "tracking_event_20260619"]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["3"]
    assert "tracking_event_20260628" in partitions() and "tracking_event_20260618" not in partitions()


@pytest.mark.django_db
def test_rollups_are_kept_longer_than_raw_events_and_trimmed_after_their_window():
    land(event("1", NOW - timedelta(days=200)), event("2", NOW - timedelta(days=20)))
    event_retention_apply(now=NOW, keep_days=10)
    assert Event.objects.count() == 0
    assert sum(RollupHourly.objects.values_list("rendered", flat=True)) == 2  # metrics still see both

    rollup_retention_apply(now=NOW, keep_days=183)

    assert sum(RollupHourly.objects.values_list("rendered", flat=True)) == 1
    assert list(MessageEngagement.objects.values_list("message_id", flat=True)) == ["m2"]
