"""Automatic entries: what lands (hard bounces, unsubscribes) adds to the suppression list in
the lander's transaction (SPEC A.5, B §11.7)."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from analytics.ingest import event_row, events_insert
from suppression.models import SuppressionEntry
from suppression.services import suppression_add
from tracking.events import event_id_new
from tracking.models import Event

pytestmark = pytest.mark.django_db


def landed(*events: dict) -> None:
    rows = []
    for event in events:
        record = {"event_id": event_id_new(), "timestamp": time.time(), "message_id": "m1", "transmission_id": "7",
                  "rcpt_to": "Jo@Example.com", **event}  # fmt: skip
        rows.append(event_row(record))
    with transaction.atomic(), connection.cursor() as cursor:
        events_insert(cursor, rows)


def entries() -> dict[tuple[str, str], tuple[str, str]]:
    return {(e.recipient, e.type): (e.source, e.description) for e in SuppressionEntry.objects.all()}


@pytest.mark.parametrize("bounce_class", ["10", "30", "90"])
def test_a_hard_bounce_adds_both_types_as_bounce_rule_naming_the_message(bounce_class):
    landed({"type": "bounce", "bounce_class": bounce_class, "error_code": "550", "reason": "550 5.1.1 no such user"})
    assert entries() == {
        ("jo@example.com", kind): ("Bounce Rule", "550: 550 5.1.1 no such user (message m1, transmission 7)")
        for kind in ("transactional", "non_transactional")
    }


@pytest.mark.parametrize("bounce_class", ["25", "21", "50", "1", ""])
def test_other_bounces_and_delays_add_nothing(bounce_class):
    landed(
        {"type": "bounce", "bounce_class": bounce_class, "error_code": "554"}, {"type": "delay", "bounce_class": "10"}
    )
    assert entries() == {}


def test_unsubscribes_add_non_transactional_with_their_source():
    landed({"type": "list_unsubscribe"}, {"type": "link_unsubscribe", "message_id": "m2", "rcpt_to": "b@example.com"})
    assert entries() == {
        ("jo@example.com", "non_transactional"): (
            "List Unsubscribe", "Unsubscribed using list unsubscribe header (message m1, transmission 7)"),
        ("b@example.com", "non_transactional"): (
            "Unsubscribe Link", "Unsubscribed using an unsubscribe link (message m2, transmission 7)"),
    }  # fmt: skip


def test_opens_clicks_and_deliveries_add_nothing():
    landed({"type": "open"}, {"type": "click"}, {"type": "delivery"}, {"type": "injection"})
    assert entries() == {}


def test_a_compliance_entry_is_left_as_it_is():
    suppression_add(recipient="jo@example.com", types=["non_transactional"], source="Compliance", description="asked")
    landed({"type": "list_unsubscribe"})
    assert entries() == {("jo@example.com", "non_transactional"): ("Compliance", "asked")}


def test_an_event_landed_again_adds_no_entry_again():
    event = {"type": "list_unsubscribe", "event_id": event_id_new(), "timestamp": time.time()}
    landed(event)
    SuppressionEntry.objects.all().delete()  # removed through the API meanwhile
    landed(event)
    assert entries() == {}


def test_a_second_list_unsubscribe_of_a_message_is_not_landed():
    landed({"type": "list_unsubscribe"}, {"type": "list_unsubscribe"})
    landed({"type": "list_unsubscribe"}, {"type": "list_unsubscribe", "message_id": "m2"})
    assert sorted(Event.objects.filter(type="list_unsubscribe").values_list("message_id", flat=True)) == ["m1", "m2"]


def test_a_later_unsubscribe_from_an_older_message_keeps_the_first_entry():
    landed({"type": "list_unsubscribe"})
    first = SuppressionEntry.objects.get()
    landed({"type": "link_unsubscribe", "message_id": "m0", "transmission_id": "6"})
    landed({"type": "list_unsubscribe", "message_id": "m9"}, {"type": "list_unsubscribe", "message_id": "m8"})
    again = SuppressionEntry.objects.get()
    assert (again.source, again.description) == (
        "List Unsubscribe", "Unsubscribed using list unsubscribe header (message m1, transmission 7)")  # fmt: skip
    assert (again.created, again.updated) == (first.created, first.updated)


def test_the_first_cause_in_one_batch_is_the_entry():
    landed({"type": "list_unsubscribe", "message_id": "m3"}, {"type": "list_unsubscribe", "message_id": "m4"})
    assert entries()[("jo@example.com", "non_transactional")][1].startswith(
        "Unsubscribed using list unsubscribe header (message m3,"
    )


def test_a_hard_bounce_adds_the_missing_type_and_leaves_a_manual_entry_alone():
    suppression_add(recipient="jo@example.com", types=["non_transactional"], source="Manually Added", description="ops")
    landed({"type": "bounce", "bounce_class": "10", "error_code": "550", "reason": "no such user"})
    assert entries() == {
        ("jo@example.com", "non_transactional"): ("Manually Added", "ops"),
        ("jo@example.com", "transactional"): ("Bounce Rule", "550: no such user (message m1, transmission 7)"),
    }


def test_a_second_one_click_after_the_entry_was_removed_suppresses_again_with_one_event():
    # The attacker's case: unsubscribed, entry deleted through the API, the same POST again.
    first = {"type": "list_unsubscribe", "event_id": event_id_new(), "timestamp": time.time()}
    landed(first)
    SuppressionEntry.objects.all().delete()
    landed(first)  # the first event landed again (a retried batch): still nothing
    assert entries() == {}
    landed({"type": "list_unsubscribe"})  # a new request for the same message
    assert list(entries()) == [("jo@example.com", "non_transactional")]
    assert Event.objects.filter(type="list_unsubscribe").count() == 1
