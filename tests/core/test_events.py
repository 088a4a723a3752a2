"""The table of event types (mailcore/events.py) holds together with the other owners it
meets in the core: the tracking-token kinds, SparkPost's webhook categories. No database.
How the APIs show each type is tested in tests/analytics/ (test_event_types.py,
test_serialize.py)."""

from __future__ import annotations

import pytest

from mailcore.events import BY_NAME, EVENT_TYPES, HIT_TYPES, OPTIONAL_FIELDS, RECORDED, hit_types
from mailcore.tokens import KINDS


def test_each_type_is_named_once():
    assert len(BY_NAME) == len(EVENT_TYPES)


def test_each_type_is_in_one_of_sparkposts_webhook_categories():
    categories = {"message_event", "track_event", "gen_event", "unsubscribe_event"}
    assert {event.name: event.category for event in EVENT_TYPES if event.category not in categories} == {}


def test_only_recorded_types_add_to_a_counter():
    counting = {event.name for event in EVENT_TYPES if event.counter or event.unique_counter}
    assert counting <= set(RECORDED)


def test_each_field_a_type_always_shows_is_one_the_events_apis_know():
    for event in EVENT_TYPES:
        assert set(event.fields) <= set(OPTIONAL_FIELDS), event.name
        assert len(set(event.fields)) == len(event.fields), event.name


def test_every_token_kind_records_recorded_types():
    assert set(HIT_TYPES) == set(KINDS)
    for kind in KINDS:
        assert hit_types(kind) and set(hit_types(kind)) <= set(RECORDED), kind


@pytest.mark.parametrize(
    "kind, unsubscribe, types",
    [
        ("open", False, ("open",)),
        ("initial_open", False, ("initial_open",)),
        ("click", False, ("click",)),
        ("click", True, ("click", "link_unsubscribe")),
        ("unsubscribe", False, ("list_unsubscribe",)),
        ("open", True, ("open",)),
    ],
)
def test_hit_types(kind, unsubscribe, types):
    assert hit_types(kind, unsubscribe=unsubscribe) == types


def test_an_unknown_token_kind_is_a_key_error():
    with pytest.raises(KeyError):
        hit_types("bounce")
