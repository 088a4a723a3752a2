"""An event in SparkPost's flat shape (analytics/serialize.py, SPEC B §6.3): each type shows
the fields ``mailcore.events`` lists for it, empty when unset, and other fields only when set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.serialize import event_flat, event_record
from mailcore.events import CATEGORIES, EVENT_TYPES, OPTIONAL_FIELDS

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _row(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": "1", "timestamp": AT, **fields}


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda event: event.name)
def test_each_field_mailcore_events_lists_for_a_type_is_shown_even_when_empty(event):
    flat = event_flat(_row(event.name))
    assert {name: flat.get(name) for name in event.fields} == dict.fromkeys(event.fields, "")
    others = set(OPTIONAL_FIELDS) - set(event.fields)
    assert others.isdisjoint(flat), f"{event.name} shows fields it does not list while they are empty"


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda event: event.name)
def test_a_field_another_type_lists_is_shown_when_set(event):
    set_fields = dict.fromkeys(OPTIONAL_FIELDS, "x")
    flat = event_flat(_row(event.name, **set_fields))
    assert {name: flat[name] for name in OPTIONAL_FIELDS} == set_fields


def test_an_unknown_type_shows_set_fields_only_and_its_record_is_a_message_event():
    row = _row("mystery", reason="why")
    assert event_flat(row)["reason"] == "why"
    assert "bounce_class" not in event_flat(row)
    assert list(event_record(row)["msys"]) == ["message_event"]


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda event: event.name)
def test_a_webhook_record_is_keyed_by_the_types_category_with_a_unix_timestamp(event):
    record = event_record(_row(event.name))
    assert list(record["msys"]) == [CATEGORIES[event.name]]
    assert record["msys"][CATEGORIES[event.name]]["timestamp"] == int(AT.timestamp())
