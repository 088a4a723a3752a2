from __future__ import annotations

import pytest
from django.db import connection, transaction

from analytics import rollups
from analytics.ingest import event_row, event_values
from analytics.rollups import rollups_apply
from tests.analytics import data
from tracking.models import EVENT_COLUMNS


def test_rollups_apply_with_lander_rows_matches_events_insert(api, db):
    """The lander's contract: it inserts with ON CONFLICT DO NOTHING RETURNING and hands
    exactly those rows (dicts, ``id`` included) to rollups_apply in the same transaction."""
    events = data.generate(seed=5, messages=80)
    cols = ", ".join(EVENT_COLUMNS)
    marks = ", ".join(["%s"] * len(EVENT_COLUMNS))
    for chunk in (events[: len(events) // 2], events[len(events) // 2 :], events[:10]):
        with transaction.atomic(), connection.cursor() as cursor:
            landed = []
            for event in chunk:
                cursor.execute(
                    f"INSERT INTO tracking_event ({cols}) VALUES ({marks}) ON CONFLICT (event_id, timestamp) DO NOTHING "
                    f"RETURNING id, {cols}",
                    list(event_values(event_row(event))),
                )
                row = cursor.fetchone()
                if row:
                    landed.append(dict(zip(["id", *EVENT_COLUMNS], row, strict=True)))
            rollups_apply(cursor, landed)
    params = {
        "from": "2024-03-01T00:00",
        "to": "2024-03-08T00:00",
        "metrics": "count_targeted,count_unique_clicked,count_clicked",
    }
    got = api.get("/api/v1/metrics/deliverability", params).json()["results"][0]
    expected = data.brute(events, start=data.START, end=data.START.replace(day=8))[None]
    assert got == {name: expected.get(name, 0) for name in params["metrics"].split(",")}


def test_a_counter_with_no_rollup_column_is_refused_naming_what_to_add(monkeypatch):
    monkeypatch.setitem(rollups._COUNT_FILTERS, "forwarded", "type = 'forward'")
    with pytest.raises(RuntimeError, match=r"\['forwarded'\].*ROLLUP_COUNTERS.*makemigrations analytics"):
        rollups._counters_check()


def test_a_rollup_column_nothing_counts_is_refused(monkeypatch):
    monkeypatch.delitem(rollups._UNIQUE, "unique_confirmed_opened")
    with pytest.raises(RuntimeError, match=r"\['unique_confirmed_opened'\] .* counted by nothing"):
        rollups._counters_check()
