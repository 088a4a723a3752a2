"""Concurrent writers of the suppression list (SPEC A.5): every statement takes its rows in
the unique key's order, so bulk PUTs of the same addresses in opposite orders wait for one
another instead of deadlocking (an attacker's 10 PUTs of 5,000 addresses at once answered 500
eight times); a deadlock with some other writer is retried, and never answers 500."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from suppression.entries import EntryWrite
from suppression.models import SuppressionEntry
from tests.helpers import assert_error, fails_if_hung

URL = "/api/v1/suppression-list"
ADDRESSES = [f"user{n:05d}@example.com" for n in range(3000)]


def _put_all(client, addresses: list[str], description: str) -> int:
    body = {
        "recipients": [{"recipient": a, "type": "non_transactional", "description": description} for a in addresses]
    }
    return client.put(URL, body, format="json").status_code


@pytest.mark.slow
@pytest.mark.parametrize("existing", [True, False], ids=["existing entries", "new entries"])
def test_bulk_puts_of_the_same_addresses_in_opposite_orders_all_succeed_without_a_deadlock(
    transactional_db, make_key, caplog, existing
):
    from rest_framework.test import APIClient

    key = make_key()
    if existing:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=key)
        assert _put_all(client, ADDRESSES, "seed") == 200
    statuses: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(order: list[str], name: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=key)
        try:
            start.wait()
            for round_ in range(3):
                statuses.append(_put_all(client, order, f"{name}-{round_}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    orders = [ADDRESSES, ADDRESSES[::-1], random.Random(7).sample(ADDRESSES, len(ADDRESSES))]
    threads = [threading.Thread(target=writer, args=(orders[n % 3], f"w{n}")) for n in range(6)]
    with caplog.at_level(logging.WARNING, logger="suppression.services"), fails_if_hung(300):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [] and statuses == [200] * 18
    assert "deadlock" not in caplog.text  # none happened, not merely retried away
    rows = SuppressionEntry.objects.values_list("recipient", "type", "source", "description")
    assert sorted(r[:3] for r in rows) == [(a, "non_transactional", "Manually Added") for a in ADDRESSES]
    assert len({description for *_key, description in rows}) == 1  # one request was the last for every row


def _statements(work) -> list[tuple[str, dict]]:
    """The (sql, params) of every statement ``work`` ran on this connection."""
    seen: list[tuple[str, dict]] = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        work()
    return seen


@pytest.mark.django_db
def test_every_writer_writes_its_rows_sorted_by_recipient_then_type():
    from suppression.services import suppression_from_events, suppression_put

    addresses = [f"{name}@example.com" for name in ("zed", "ab", "m\u00fcller", "mz", "bob", "a.b", "a_b")]
    shuffled = random.Random(3).sample(addresses, len(addresses))
    writes = [
        EntryWrite(address, kind, None if n % 2 else f"d{n}")
        for n, address in enumerate(shuffled)
        for kind in ("transactional", "non_transactional")
    ]
    events = [{"type": "bounce", "bounce_class": "10", "rcpt_to": a, "message_id": "m"} for a in reversed(shuffled)]
    events.insert(1, {"type": "list_unsubscribe", "rcpt_to": "bob@example.com", "message_id": "m"})
    seen = _statements(lambda: suppression_put(writes=writes))
    SuppressionEntry.objects.all().delete()
    seen += _statements(lambda: suppression_from_events(events=events))
    written = [params for sql, params in seen if isinstance(params, dict) and "recipients" in params]
    assert len(written) == 3  # the put's upsert and its descriptions, the lander's insert
    for params in written:
        keys = list(zip(params["recipients"], params["types"], strict=True))
        assert keys == sorted(keys) and len(keys) == len(set(keys))
    # and PostgreSQL inserted them in that order (ids are drawn as rows are inserted)
    stored = list(SuppressionEntry.objects.order_by("id").values_list("recipient", "type"))
    assert stored == sorted(stored) and len(stored) == len(addresses) * 2


@pytest.mark.slow
def test_a_put_that_is_a_deadlocks_victim_against_another_writer_is_retried_and_succeeds(transactional_db, caplog):
    """A real deadlock: another transaction holds the last entry, the PUT takes the first and
    waits for it, then the other asks for the first. PostgreSQL ends the PUT (the one with the
    shorter ``deadlock_timeout``); it runs again once the other has committed."""
    from suppression.services import suppression_put

    first, last = "aa@example.com", "zz@example.com"
    suppression_put(writes=[EntryWrite(a, "transactional", "seed") for a in (first, last)])
    holding = threading.Event()
    put_pid: list[int] = []
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET deadlock_timeout = '30s'")
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_DESCRIBE_ONE, [last])
                holding.set()
                _wait_for_a_lock_wait(cursor, put_pid)
                cursor.execute(_DESCRIBE_ONE, [first])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def put() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET deadlock_timeout = '200ms'")
                cursor.execute("SELECT pg_backend_pid()")
                put_pid.append(cursor.fetchone()[0])
            holding.wait(10)
            suppression_put(writes=[EntryWrite(a, "transactional", "put") for a in (last, first)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=other), threading.Thread(target=put)]
    with caplog.at_level(logging.WARNING, logger="suppression.services"), fails_if_hung(60):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert "deadlock's victim (attempt 1 of 4)" in caplog.text
    assert dict(SuppressionEntry.objects.values_list("recipient", "description")) == {first: "put", last: "put"}


_DESCRIBE_ONE = "UPDATE suppression_suppressionentry SET description = 'other' WHERE recipient = %s"


def _wait_for_a_lock_wait(cursor, pids: list[int]) -> None:
    """Until the PUT's backend (``pids[0]``) waits for a row lock: the held entry."""
    for _ in range(500):
        if pids:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # read afresh inside this transaction
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pids[0]])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
        time.sleep(0.01)
    raise AssertionError("the PUT never waited for the held entry")


@pytest.mark.django_db
def test_a_put_that_stays_a_deadlocks_victim_answers_503_not_500(api, monkeypatch):
    import psycopg

    from suppression import services

    calls = []

    def deadlocked(writes, *, source):
        calls.append(1)
        raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(services, "_upsert", deadlocked)
    monkeypatch.setattr(services.time, "sleep", lambda seconds: None)
    response = api.put(URL, {"recipients": [{"recipient": "a@example.com", "type": "transactional"}]}, format="json")
    error = assert_error(response, 503, "1502")
    assert "retry" in error["description"] and len(calls) == services.DEADLOCK_ATTEMPTS
