"""The SMTP listener's store connection (``transmissions.services.transmissions_store_connect``)."""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection

from transmissions.services import transmissions_store_connect

pytestmark = pytest.mark.django_db(transaction=True)

_FOREIGN_KEY_CHECK = 'SELECT 1 FROM ONLY "public"."transmissions_transmission" x WHERE "id" = $1 FOR KEY SHARE OF x'


def _generic_plan(setting: str) -> str:
    """The plan the server keeps for the foreign-key check of a message row (a generic plan:
    the one made once and reused), on a store connection, once the statistics say the
    transmission table is empty; ``setting`` is run first ("" for nothing)."""

    async def plan() -> str:
        store = await transmissions_store_connect()
        try:
            if setting:
                await store.database.execute(setting)
            await store.database.execute("SET plan_cache_mode = force_generic_plan")
            await store.database.execute(f"PREPARE fk_check(bigint) AS {_FOREIGN_KEY_CHECK}")
            cursor = await store.database.execute("EXPLAIN EXECUTE fk_check(1)")
            return "\n".join(row[0] for row in await cursor.fetchall())
        finally:
            await store.database.close()

    return asyncio.run(plan())


def test_a_message_row_finds_its_transmission_by_the_primary_key_even_when_statistics_say_the_table_is_empty():
    """A new install's first burst, before autovacuum's first analyze: the statistics say
    the transmission table is empty. The foreign-key check of each stored message is planned
    once per connection; as a sequential scan, every message after scanned the whole growing
    table. On the store connection it reads the primary key."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transmissions_transmission")  # empty: the statistics say so
    assert "Index Scan using transmissions_transmission_pkey" in _generic_plan("")
    assert "Seq Scan" in _generic_plan("SET enable_seqscan = on"), "the case the setting is for"
