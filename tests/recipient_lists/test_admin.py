"""A recipient list's admin page shows its recipients a page at a time (issue 15, Deliver 5),
and the template editor's sample data comes from one of its entries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recipient_lists.services import recipient_list_create

pytestmark = pytest.mark.django_db

PAGE = "/admin/recipient_lists/recipientlist/big/change/"
SAMPLE = "/admin/recipient_lists/recipientlist/sample/"


@pytest.fixture
def big_list():
    recipients = [
        {
            "address": {"email": f"r{i}@example.com", "name": f"R {i}"},
            "tags": ["t"],
            "metadata": {"tier": "gold", "n": i},
            "substitution_data": {"first_name": f"Name{i}", "n": -i},
        }
        for i in range(1000)
    ]
    return recipient_list_create(list_id="big", name="Big", recipients=recipients)


def emails(response) -> list[str]:
    return [row["email"] for row in response.context["recipients_page"]["rows"]]


def test_the_page_shows_one_page_of_recipients_with_one_query_for_them(admin_client, big_list):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(PAGE)
    assert response.status_code == 200
    assert emails(response) == [f"r{i}@example.com" for i in range(100)]
    page = response.context["recipients_page"]
    assert (page["number"], page["last"], page["total"], page["next"]) == (1, 10, 1000, 2)
    recipient_reads = [q for q in queries.captured_queries if 'FROM "recipient_lists_recipient" ' in q["sql"]]
    assert len(recipient_reads) == 1 and "LIMIT 100" in recipient_reads[0]["sql"]
    assert b"Page 1 of 10" in response.content and b'href="?page=2#recipients"' in response.content


def test_later_pages_and_out_of_range_pages(admin_client, big_list):
    assert emails(admin_client.get(PAGE + "?page=7"))[0] == "r600@example.com"
    last = admin_client.get(PAGE + "?page=10")
    assert emails(last)[-1] == "r999@example.com" and last.context["recipients_page"]["next"] is None
    assert emails(admin_client.get(PAGE + "?page=99"))[0] == "r900@example.com"
    assert emails(admin_client.get(PAGE + "?page=nope"))[0] == "r0@example.com"


def test_recipient_values_are_escaped(admin_client):
    evil = "<script>alert(1)</script>"
    recipient_list_create(
        list_id="evil",
        name="Evil",
        recipients=[{"address": {"email": "e@example.com", "name": evil}, "substitution_data": {"x": evil}}],
    )
    page = admin_client.get("/admin/recipient_lists/recipientlist/evil/change/").content.decode()
    assert evil not in page and "&lt;script&gt;" in page


def test_the_sample_page_lists_lists_and_gives_an_entrys_data(admin_client, big_list):
    assert admin_client.get(SAMPLE).json() == {"lists": [{"id": "big", "name": "Big", "total": 1000}]}
    entry = admin_client.get(SAMPLE + "?list=big&index=3").json()
    assert entry["substitution_data"] == {"tier": "gold", "n": -2, "first_name": "Name2"}
    assert entry["address"]["email"] == "r2@example.com"
    assert admin_client.get(SAMPLE + "?list=big&index=1001").status_code == 404
    assert admin_client.get(SAMPLE + "?list=none").status_code == 404


def test_the_sample_page_is_staff_only(client, big_list):
    assert client.get(SAMPLE + "?list=big&index=1").status_code == 302
