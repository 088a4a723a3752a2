"""The calls other parts of Engage make: ``suppression_add`` and ``suppressed_among`` (SPEC A.5)."""

from __future__ import annotations

import pytest
from django.db import connection

from suppression.models import SuppressionEntry
from suppression.selectors import suppressed_among
from suppression.services import suppression_add

pytestmark = pytest.mark.django_db


def test_add_is_idempotent_and_updates_the_existing_entry():
    suppression_add(
        recipient="Ann@Example.com", types=["non_transactional"], source="List Unsubscribe", description="one"
    )
    first = SuppressionEntry.objects.get()
    suppression_add(
        recipient="ann@example.com", types=["non_transactional"], source="Unsubscribe Link", description="two"
    )
    entry = SuppressionEntry.objects.get()
    assert entry.pk == first.pk and entry.recipient == "ann@example.com"
    assert (entry.source, entry.description) == ("Unsubscribe Link", "two")
    assert entry.created == first.created and entry.updated > first.updated


def test_add_both_types_for_a_hard_bounce():
    suppression_add(
        recipient="b@example.com", types=["transactional", "non_transactional"], source="Bounce Rule", description="550"
    )
    assert sorted(SuppressionEntry.objects.values_list("type", flat=True)) == ["non_transactional", "transactional"]


def test_add_leaves_a_compliance_entry_as_it_is():
    suppression_add(recipient="c@example.com", types=["transactional"], source="Compliance", description="staff")
    suppression_add(recipient="c@example.com", types=["transactional"], source="Bounce Rule", description="550")
    entry = SuppressionEntry.objects.get()
    assert (entry.source, entry.description) == ("Compliance", "staff")


def test_add_cuts_a_long_description_on_a_character_boundary():
    suppression_add(recipient="d@example.com", types=["transactional"], source="Bounce Rule", description="é" * 600)
    assert SuppressionEntry.objects.get().description == "é" * 512


@pytest.mark.parametrize(("types", "source"), [(["both"], "Bounce Rule"), (["transactional"], "Nobody")])
def test_add_refuses_undeclared_names(types, source):
    with pytest.raises(ValueError):
        suppression_add(recipient="e@example.com", types=types, source=source, description="")


def test_suppressed_among_answers_the_given_spellings_for_that_type_in_one_query(django_assert_num_queries):
    suppression_add(recipient="x@example.com", types=["non_transactional"], source="Manually Added", description="")
    suppression_add(recipient="y@example.com", types=["transactional"], source="Manually Added", description="")
    addresses = ["X@Example.com", "x@example.com", "y@example.com"] + [f"n{i}@example.com" for i in range(500)]
    with django_assert_num_queries(1):
        assert suppressed_among(addresses=addresses, type="non_transactional") == {"X@Example.com", "x@example.com"}
    assert suppressed_among(addresses=addresses, type="transactional") == {"y@example.com"}
    assert suppressed_among(addresses=[], type="transactional") == set()


def test_the_chunk_lookup_can_use_the_recipient_type_index():
    """On a small table the planner rightly prefers a scan (with a hashed array); with scans
    priced out the plan shows the index matches the whole predicate."""
    SuppressionEntry.objects.bulk_create(
        SuppressionEntry(recipient=f"s{i}@example.com", type=("transactional", "non_transactional")[i % 2])
        for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT recipient FROM suppression_suppressionentry WHERE recipient = ANY(%s) AND type = %s",
            [[f"s{i}@example.com" for i in range(0, 1000, 2)], "transactional"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "suppression_recipient_type_unique" in plan and "Seq Scan" not in plan, plan[:500]
