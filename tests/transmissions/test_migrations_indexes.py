"""The transmission table's indexes (migration ``transmissions/0009``): each a query uses,
none only written."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_transmission_table_has_no_pattern_index_nothing_queries():
    """``db_index=True`` on a CharField also builds a ``varchar_pattern_ops`` index for LIKE;
    nothing matches transmissions with LIKE, and an SMTP injection wrote every such index on
    each of its row's writes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transmissions_transmission'")
        indexes = dict(cursor.fetchall())
    assert not [name for name, definition in indexes.items() if "pattern_ops" in definition], indexes
    for column in ("campaign_id", "template_id", "list_id"):
        assert f"tx_{column}" in indexes, indexes
    assert len(indexes) == 5, sorted(indexes)  # with the primary key and tx_state_start
