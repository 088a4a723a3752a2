"""A claim takes at most ``ENGAGE_SEND_BATCH_SIZE`` messages (transmissions.sending): the
suppression list, the consent register and a worker's crash all act per claimed batch, so a
claim that swallowed its whole chunk let an address suppressed mid-send be mailed (issue 14)."""

from __future__ import annotations

import pytest
from django.db import connection

from transmissions import sending
from transmissions.models import Message, Transmission, TransmissionState

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("queued", [60, 500])
def test_a_claim_takes_no_more_than_the_batch_size(queued):
    transmission = Transmission.objects.create(state=TransmissionState.GENERATING)
    Message.objects.bulk_create(
        Message(transmission=transmission, chunk=0, message_id=f"{n:020d}", email=f"r{n}@example.com",
                recipient={"address": {"email": f"r{n}@example.com"}})
        for n in range(queued)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transmissions_message")
        # Plans without hashing, where a rescanned LIMIT subquery could find 50 more per row
        # (the live run's plan behind one claimed_at for 500 messages was not reproduced).
        cursor.execute("SET enable_hashjoin = off")
        cursor.execute("SET enable_mergejoin = off")
    claim = sending._Claim("test-token")
    taken = []
    try:
        while True:
            claim.execute(
                sending._CLAIM_SQL,
                {"token": "test-token", "tx": transmission.pk, "chunk": 0, "stale": 120, "limit": 50},
            )
            rows = claim.cursor.fetchall()
            if not rows:
                break
            taken.append(len(rows))
    finally:
        claim.close()
    assert taken == [50] * (queued // 50) + ([queued % 50] if queued % 50 else [])
