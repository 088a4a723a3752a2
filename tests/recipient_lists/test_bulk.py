"""Big lists are stored and read in batches, never a query per recipient."""

from __future__ import annotations

import pytest

from recipient_lists.selectors import recipient_list_iter_recipients

pytestmark = pytest.mark.django_db


def recipients(count: int) -> list[dict]:
    return [{"address": {"email": f"user{n}@example.com", "name": f"User {n}"}, "tags": ["t"]} for n in range(count)]


@pytest.mark.slow
def test_creating_12000_recipients_takes_a_handful_of_queries(api, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):  # key, id check, list insert, 3 batches of 5000, savepoints
        response = api.post("/api/v1/recipient-lists", {"id": "big", "recipients": recipients(12_000)}, format="json")
    assert response.json()["results"]["total_accepted_recipients"] == 12_000


@pytest.mark.slow
def test_replacing_recipients_takes_a_handful_of_queries(api, django_assert_max_num_queries):
    api.post("/api/v1/recipient-lists", {"id": "big", "recipients": recipients(6_000)}, format="json")
    with django_assert_max_num_queries(12):
        response = api.put("/api/v1/recipient-lists/big", {"recipients": recipients(11_000)}, format="json")
    assert response.json()["results"]["total_accepted_recipients"] == 11_000


@pytest.mark.slow
def test_a_list_of_100000_recipients_is_created_and_read_back(api):
    response = api.post("/api/v1/recipient-lists", {"id": "huge", "recipients": recipients(100_000)}, format="json")
    assert response.status_code == 200
    assert response.json()["results"]["total_accepted_recipients"] == 100_000
    summary = api.get("/api/v1/recipient-lists/huge").json()["results"]
    assert summary["total_accepted_recipients"] == 100_000


def test_iter_recipients_reads_in_chunks_in_order(api, django_assert_max_num_queries):
    api.post("/api/v1/recipient-lists", {"id": "l", "recipients": recipients(2_500)}, format="json")
    with django_assert_max_num_queries(4):  # list check + 3 chunks of 1000
        emails = [r["address"]["email"] for r in recipient_list_iter_recipients(list_id="l", chunk_size=1000)]
    assert emails == [f"user{n}@example.com" for n in range(2_500)]


def test_iter_recipients_of_an_unknown_list_raises_not_found(db):
    from engage import errors

    with pytest.raises(errors.NotFound):
        next(recipient_list_iter_recipients(list_id="nope"))
