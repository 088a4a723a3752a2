"""The worker's connection while it holds a claim (``transmissions.sending._Claim``): its
``delivered`` mark is prepared once per connection and keeps the plan it gets then."""

from __future__ import annotations

import pytest
from django.db import connection

from transmissions.sending import _MARK_DELIVERED, _Claim

pytestmark = pytest.mark.django_db


def _plan(cursor, name: str) -> str:
    cursor.execute("SET plan_cache_mode = force_generic_plan")  # the plan kept after the fifth run
    try:
        cursor.execute(f"EXPLAIN EXECUTE {name}(1, 'token', '[]', 'sending')")
        return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        cursor.execute("RESET plan_cache_mode")


def test_the_delivered_mark_finds_its_message_by_the_primary_key_even_when_statistics_say_the_table_is_empty():
    """A new install until autovacuum's first analyze, or a bench after its vacuum: the
    statistics say the message table is empty. As a sequential scan, the mark kept for the
    connection's life scanned the whole growing table for every message delivered after;
    with sequential scans off alone, all of msg_pending (every queued message). Which plan
    the statement got without the claim's setting and its state test depended on the
    table's size then: on a small one, either of those."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transmissions_message")  # empty: the statistics say so
    claim = _Claim("token")
    try:
        assert "Index Scan using transmissions_message_pkey" in _plan(claim.cursor, _MARK_DELIVERED.decode())
    finally:
        claim.close()
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on", "the connection's other work keeps its setting"
