"""``/api/v1/recipient-lists`` against the real database (SPEC B §3, A.1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from recipient_lists.selectors import recipient_list_needed
from recipient_lists.services import recipient_list_delete
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

RECIPIENTS = [
    {"address": {"email": "wilma@example.com", "name": " Wilma Flintstone "}, "tags": ["a"], "metadata": {"age": 30}},
    {"address": "fred@example.com", "return_path": "bounce@example.com", "substitution_data": {"x": 1}},
    {"address": {"email": "barney@example.com", "header_to": "wilma@example.com"}},
]


def create(api, query="", **body):
    body.setdefault("recipients", RECIPIENTS)
    return api.post(f"/api/v1/recipient-lists{query}", body, format="json")


def get(api, list_id, query=""):
    response = api.get(f"/api/v1/recipient-lists/{list_id}{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_it_creates_a_list_and_returns_counts(api):
    response = create(api, id="friends", name="Friends", description="d", attributes={"k": [1]})
    assert response.status_code == 200
    assert response.json() == {
        "results": {"total_rejected_recipients": 0, "total_accepted_recipients": 3, "id": "friends", "name": "Friends"}
    }


def test_it_works_with_a_trailing_slash(api):
    assert api.post("/api/v1/recipient-lists/", {"id": "s", "recipients": RECIPIENTS}, format="json").status_code == 200
    assert api.get("/api/v1/recipient-lists/s/").status_code == 200


def test_get_shows_recipients_in_the_sparkpost_shape(api):
    create(api, id="friends", attributes={"k": "v"})
    detail = get(api, "friends", "?show_recipients=true")
    assert detail["attributes"] == {"k": "v"}
    assert detail["name"] == "friends" and detail["description"] == ""
    assert detail["total_accepted_recipients"] == 3
    assert detail["recipients"] == [
        {
            "address": {"email": "wilma@example.com", "name": "Wilma Flintstone"},
            "return_path": "",
            "tags": ["a"],
            "metadata": {"age": 30},
            "substitution_data": {},
        },
        {
            "address": {"email": "fred@example.com"},
            "return_path": "bounce@example.com",
            "tags": [],
            "metadata": {},
            "substitution_data": {"x": 1},
        },
        {
            "address": {"email": "barney@example.com", "header_to": "wilma@example.com"},
            "return_path": "",
            "tags": [],
            "metadata": {},
            "substitution_data": {},
        },
    ]


def test_get_without_show_recipients_has_no_recipients(api):
    create(api, id="friends")
    assert "recipients" not in get(api, "friends")
    assert "recipients" not in get(api, "friends", "?show_recipients=false")


def test_it_generates_the_id_from_the_name(api):
    ids = [create(api, name="My List!").json()["results"]["id"] for _ in range(3)]
    assert ids == ["my-list", "my-list-2", "my-list-3"]
    assert get(api, "my-list")["name"] == "My List!"


def test_a_generated_id_never_starts_with_rcptlist(api):
    assert create(api, name="rcptlist_customers").json()["results"]["id"] == "rcptlist-customers"


def test_a_given_id_starting_with_rcptlist_is_422_1300(api):
    error = assert_error(create(api, id="rcptlist_x"), 422, "1300")
    assert "rcptlist_" in error["description"]


def test_duplicate_list_id_is_409_1602(api):
    create(api, id="dup")
    error = assert_error(create(api, id="dup"), 409, "1602")
    assert "dup" in error["description"]


def test_missing_recipients_is_422_1400(api):
    assert_error(api.post("/api/v1/recipient-lists", {"id": "x"}, format="json"), 422, "1400")


@pytest.mark.parametrize("recipients", [[], [{"address": "not-an-email"}, {"address": {"name": "x"}}]])
def test_no_valid_recipient_is_400_5002(api, recipients):
    error = assert_error(create(api, id="x", recipients=recipients), 400, "5002")
    if recipients:
        assert "recipients[0]: address.email 'not-an-email' is not a valid email address" in error["description"]
    assert_error(api.get("/api/v1/recipient-lists/x"), 404, "1600")


def test_partly_rejected_list_is_200_with_5000_and_rcpt_to_errors(api):
    recipients = [
        RECIPIENTS[0],
        {"address": "bad@"},
        {"address": {"name": "no email"}},
        {"address": "ok@example.com", "tags": "x"},
    ]
    response = create(api, id="mixed", recipients=recipients)
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["code"] == "5000"
    results = body["results"]
    assert results["total_accepted_recipients"] == 1 and results["total_rejected_recipients"] == 3
    assert [error["code"] for error in results["rcpt_to_errors"]] == ["1300", "1400", "1300"]
    assert "recipients[1]" in results["rcpt_to_errors"][0]["description"]
    assert "recipients[3]" in results["rcpt_to_errors"][2]["description"]
    assert get(api, "mixed")["total_accepted_recipients"] == 1


def test_num_rcpt_errors_bounds_the_errors_returned(api):
    recipients = [RECIPIENTS[0]] + [{"address": f"bad{n}@"} for n in range(5)]
    results = create(api, "?num_rcpt_errors=2", id="m", recipients=recipients).json()["results"]
    assert len(results["rcpt_to_errors"]) == 2 and results["total_rejected_recipients"] == 5


@pytest.mark.parametrize(
    "recipient",
    [
        "fred@example.com",
        {"address": 5},
        {"address": {"email": 5}},
        {"address": {"email": "a@example.com", "name": 5}},
        {"address": "a@example.com", "return_path": 1},
        {"address": "a@example.com", "tags": [1]},
        {"address": "a@example.com", "metadata": []},
        {"address": "a@example.com", "substitution_data": "x"},
        {"address": "a b@example.com"},
        {"address": "a@-example.com"},
        {"address": "a@exa_mple.com"},
    ],
)
def test_wrong_recipient_types_are_rejected_with_the_index(api, recipient):
    results = create(api, id="x", recipients=[RECIPIENTS[1], recipient]).json()["results"]
    assert results["total_rejected_recipients"] == 1
    assert results["rcpt_to_errors"][0]["code"] == "1300"
    assert "recipients[1]" in results["rcpt_to_errors"][0]["description"]


def test_tags_are_capped_at_ten_and_nulls_are_not_given(api):
    recipient = {
        "address": {"email": "a@example.com", "name": None},
        "tags": [str(n) for n in range(12)],
        "metadata": None,
    }
    create(api, id="t", recipients=[recipient])
    stored = get(api, "t", "?show_recipients=true")["recipients"][0]
    assert stored["tags"] == [str(n) for n in range(10)]
    assert stored["address"] == {"email": "a@example.com"} and stored["metadata"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x" * 65},
        {"id": 5},
        {"name": "n" * 65},
        {"description": "d" * 1025},
        {"attributes": []},
        {"recipients": {"address": "a@example.com"}},
    ],
)
def test_wrong_list_fields_are_422_1300(api, body):
    assert_error(create(api, **body), 422, "1300")


def test_list_returns_summaries_without_recipients_in_few_queries(api, django_assert_max_num_queries):
    for n in range(6):
        create(api, id=f"l{n}", description=f"d{n}")
    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/recipient-lists")
    listed = response.json()["results"]
    assert len(listed) == 6
    assert listed[0] == {
        "id": "l0",
        "name": "l0",
        "description": "d0",
        "attributes": {},
        "total_accepted_recipients": 3,
    }


def test_get_unknown_list_is_404_1600(api):
    error = assert_error(api.get("/api/v1/recipient-lists/nope"), 404, "1600")
    assert error["description"] == "List 'nope' does not exist"


def test_put_replaces_recipients_and_attributes(api):
    create(api, id="l", name="Old", description="keep", attributes={"a": 1, "b": 2})
    body = {"name": "New", "attributes": {"c": 3}, "recipients": [{"address": "new@example.com"}, {"address": "x"}]}
    response = api.put("/api/v1/recipient-lists/l", body, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert results["id"] == "l" and results["name"] == "New"
    assert results["total_accepted_recipients"] == 1 and results["total_rejected_recipients"] == 1
    detail = get(api, "l", "?show_recipients=true")
    assert detail["description"] == "keep" and detail["attributes"] == {"c": 3}
    assert [r["address"]["email"] for r in detail["recipients"]] == ["new@example.com"]


def test_put_without_recipients_returns_id_and_name_only(api):
    create(api, id="l")
    response = api.put("/api/v1/recipient-lists/l", {"description": "new", "recipients": None}, format="json")
    assert response.json() == {"results": {"id": "l", "name": "l"}}
    assert get(api, "l")["total_accepted_recipients"] == 3


def test_put_with_a_mismatched_body_id_is_422_1300(api):
    create(api, id="l")
    assert_error(api.put("/api/v1/recipient-lists/l", {"id": "other"}, format="json"), 422, "1300")


def test_put_with_no_valid_recipients_is_400_5002_and_keeps_the_old_ones(api):
    create(api, id="l")
    assert_error(api.put("/api/v1/recipient-lists/l", {"recipients": [{"address": "x"}]}, format="json"), 400, "5002")
    assert get(api, "l")["total_accepted_recipients"] == 3


def test_put_unknown_list_is_404_1600(api):
    assert_error(api.put("/api/v1/recipient-lists/nope", {"name": "x"}, format="json"), 404, "1600")


def test_put_and_delete_of_a_list_in_use_are_409_1602(api, monkeypatch):
    create(api, id="busy")
    monkeypatch.setattr("recipient_lists.services.recipient_list_in_use", lambda *, list_id: True)
    assert_error(api.put("/api/v1/recipient-lists/busy", {"name": "x"}, format="json"), 409, "1602")
    assert_error(api.delete("/api/v1/recipient-lists/busy"), 409, "1602")
    assert get(api, "busy")["name"] == "busy"


def test_put_and_delete_with_no_in_use_receiver_fail_closed_and_keep_the_list(api, monkeypatch):
    create(api, id="l")
    monkeypatch.setattr(recipient_list_needed, "receivers", [])  # transmissions' answer disconnected
    with pytest.raises(ImproperlyConfigured, match="recipient_list_needed"):
        recipient_list_delete(list_id="l")
    assert_error(api.put("/api/v1/recipient-lists/l", {"name": "x"}, format="json"), 500, "1500")
    assert_error(api.delete("/api/v1/recipient-lists/l"), 500, "1500")
    assert get(api, "l")["name"] == "l"


def test_delete_is_204_and_removes_the_list(api):
    create(api, id="l")
    response = api.delete("/api/v1/recipient-lists/l")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get("/api/v1/recipient-lists/l"), 404, "1600")


def test_delete_unknown_list_is_404_1600(api):
    assert_error(api.delete("/api/v1/recipient-lists/nope"), 404, "1600")


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_every_method_needs_recipient_lists_manage(api_with, method):
    client = api_with("templates/modify", "transmissions/modify")
    path = "/api/v1/recipient-lists" if method in {"get", "post"} else "/api/v1/recipient-lists/l"
    assert_error(getattr(client, method)(path, {}, format="json"), 403, "1100")


def test_the_manage_grant_is_enough(api_with):
    client = api_with("recipient_lists/manage")
    assert (
        client.post("/api/v1/recipient-lists", {"id": "l", "recipients": RECIPIENTS}, format="json").status_code == 200
    )
    assert client.get("/api/v1/recipient-lists/l").status_code == 200
