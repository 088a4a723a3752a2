"""``/api/v1/suppression-list`` against the real database (SPEC A.5, B §11)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/suppression-list"
UPDATED = {"results": {"message": "Suppression List successfully updated"}}


def put(api, *entries, path=URL):
    return api.put(path, {"recipients": list(entries)}, format="json")


def found(api, address, query=""):
    response = api.get(f"{URL}/{address}{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_bulk_put_stores_one_entry_per_type_and_answers_the_sparkpost_message(api):
    response = put(
        api,
        {"recipient": "Ada@Example.com", "type": "transactional", "description": "asked"},
        {"email": "bob@example.com", "transactional": True, "non_transactional": True},
    )
    assert response.status_code == 200 and response.json() == UPDATED
    ada = found(api, "ada@example.com")
    assert ada["total_count"] == 1 and ada["links"] == []
    (entry,) = ada["results"]
    assert entry["recipient"] == "ada@example.com"
    assert entry["type"] == "transactional" and entry["transactional"] is True
    assert "non_transactional" not in entry
    assert entry["source"] == "Manually Added" and entry["description"] == "asked"
    assert entry["created"].endswith("+00:00") and entry["updated"].endswith("+00:00")
    bob = found(api, "bob@example.com")["results"]
    assert [(e["type"], e.get(e["type"])) for e in bob] == [("non_transactional", True), ("transactional", True)]


def test_type_wins_over_a_boolean_and_false_changes_nothing(api):
    put(api, {"recipient": "a@example.com", "type": "non_transactional", "transactional": True})
    assert [e["type"] for e in found(api, "a@example.com")["results"]] == ["non_transactional"]
    put(api, {"recipient": "a@example.com", "transactional": False, "non_transactional": False})
    assert [e["type"] for e in found(api, "a@example.com")["results"]] == ["non_transactional"]


def test_a_duplicate_in_one_request_last_wins(api):
    put(
        api,
        {"recipient": "a@example.com", "type": "transactional", "description": "first"},
        {"recipient": "A@EXAMPLE.COM", "type": "transactional", "description": "last"},
    )
    (entry,) = found(api, "a@example.com")["results"]
    assert entry["description"] == "last"


def test_an_update_keeps_the_description_when_none_is_given(api):
    put(api, {"recipient": "a@example.com", "type": "transactional", "description": "kept"})
    put(api, {"recipient": "a@example.com", "type": "transactional", "description": None})
    assert found(api, "a@example.com")["results"][0]["description"] == "kept"


def test_one_put_mixing_entries_with_and_without_a_description_replaces_only_the_given_ones(api):
    put(api, *({"recipient": f"{name}@example.com", "type": "transactional", "description": "old"} for name in "abc"))
    put(
        api,
        {"recipient": "c@example.com", "type": "transactional", "description": "new"},
        {"recipient": "b@example.com", "type": "transactional"},
        {"recipient": "a@example.com", "type": "transactional", "description": ""},
        {"recipient": "d@example.com", "type": "transactional", "description": "fresh"},
        {"recipient": "e@example.com", "type": "transactional"},
    )
    descriptions = {name: found(api, f"{name}@example.com")["results"][0]["description"] for name in "abcde"}
    assert descriptions == {"a": "", "b": "old", "c": "new", "d": "fresh", "e": ""}


def test_bulk_put_is_all_or_nothing(api):
    response = put(
        api,
        {"recipient": "good@example.com", "type": "transactional"},
        {"recipient": "example.com", "type": "transactional"},
        {"recipient": "x@example.com"},
    )
    error = assert_error(response, 400, "1300")
    assert "2 invalid or malformed" in error["description"]
    assert "recipients[1]" in error["description"] and "recipients[2]" in error["description"]
    assert_error(api.get(f"{URL}/good@example.com"), 404, "1600")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"recipients": "a@example.com"}, "array of recipients"),
        ({}, "array of recipients"),
        ([{"recipient": "a@example.com", "type": "transactional"}], "array of recipients"),
        ({"recipients": [{"recipient": "a@example.com", "type": "both"}]}, "recipients[0].type"),
        ({"recipients": [{"recipient": "a@example.com", "transactional": "yes"}]}, "recipients[0].transactional"),
        ({"recipients": [{"recipient": 5, "type": "transactional"}]}, "recipients[0].recipient"),
        ({"recipients": ["a@example.com"]}, "recipients[0]"),
        ({"recipients": [{"type": "transactional"}]}, "recipient is required"),
        (
            {"recipients": [{"recipient": "a@example.com", "type": "transactional", "description": "é" * 513}]},
            "1024 bytes",
        ),
    ],
)
def test_bad_bulk_bodies_are_400_1300_naming_the_field(api, body, where):
    error = assert_error(api.put(URL, body, format="json"), 400, "1300")
    assert where in error["description"]


def test_bulk_put_takes_10000_entries_and_refuses_10001(api):
    entries = [{"recipient": f"r{i}@example.com", "type": "non_transactional"} for i in range(10_000)]
    assert put(api, *entries).status_code == 200
    assert api.get(f"{URL}?per_page=1").json()["total_count"] == 10_000
    error = assert_error(put(api, *entries, {"recipient": "one@example.com", "type": "transactional"}), 400, "1300")
    assert "10000" in error["description"]


def test_single_put_takes_the_legacy_boolean_body(api):
    body = {"transactional": False, "non_transactional": True, "description": "Test description"}
    response = api.put(f"{URL}/test@test.com", body, format="json")
    assert response.status_code == 200 and response.json() == UPDATED
    (entry,) = found(api, "test@test.com")["results"]
    assert entry["type"] == "non_transactional" and entry["description"] == "Test description"


def test_single_put_without_a_type_is_400(api):
    error = assert_error(api.put(f"{URL}/a@example.com", {"description": "d"}, format="json"), 400, "1300")
    assert "suppression type" in error["description"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_invalid_address_in_the_path_is_400_1300(api, method):
    response = getattr(api, method)(f"{URL}/None", {"type": "transactional"}, format="json")
    error = assert_error(response, 400, "1300")
    assert "'None' is not a valid email address" in error["description"]


@pytest.mark.parametrize("path", ["a+b@example.com", "a%2Bb%40example.com", "A%2BB@EXAMPLE.COM", "a+b@example.com/"])
def test_raw_and_percent_encoded_paths_name_the_same_entry_and_plus_is_literal(api, path):
    api.put(f"{URL}/a+b@example.com", {"type": "transactional"}, format="json")
    assert found(api, path)["results"][0]["recipient"] == "a+b@example.com"
    assert_error(api.get(f"{URL}/a%20b@example.com"), 400, "1300")  # a space is not a plus


def test_get_narrows_by_types_and_404s_when_nothing_is_left(api):
    put(api, {"recipient": "a@example.com", "type": "transactional"})
    assert found(api, "a@example.com", "?types=transactional")["total_count"] == 1
    error = assert_error(api.get(f"{URL}/a@example.com?types=non_transactional"), 404, "1600")
    assert error["message"] == "Recipient could not be found"
    assert_error(api.get(f"{URL}/a@example.com?types=bogus"), 400, "1200")


def test_get_of_an_unknown_address_is_404_1600(api):
    error = assert_error(api.get(f"{URL}/nobody@example.com"), 404, "1600")
    assert error["message"] == "Recipient could not be found"


def test_delete_removes_both_types_or_the_one_named(api):
    put(api, {"recipient": "a@example.com", "transactional": True, "non_transactional": True})
    response = api.delete(f"{URL}/a@example.com", {"type": "transactional"}, format="json")
    assert response.status_code == 204 and response.content == b""
    assert [e["type"] for e in found(api, "a@example.com")["results"]] == ["non_transactional"]
    error = assert_error(api.delete(f"{URL}/a@example.com", {"type": "transactional"}, format="json"), 404, "1600")
    assert error["message"] == "Recipient could not be found"
    assert api.delete(f"{URL}/A@example.com").status_code == 204
    assert_error(api.delete(f"{URL}/a@example.com"), 404, "1600")


def test_delete_with_a_bad_type_is_400(api):
    put(api, {"recipient": "a@example.com", "type": "transactional"})
    assert_error(api.delete(f"{URL}/a@example.com", {"type": "all"}, format="json"), 400, "1300")
    assert_error(api.delete(f"{URL}/a@example.com", [1], format="json"), 400, "1300")


def test_compliance_entries_cannot_be_changed_or_removed_through_the_api(api):
    from suppression.services import suppression_add

    suppression_add(recipient="c@example.com", types=["transactional"], source="Compliance", description="staff")
    error = assert_error(put(api, {"recipient": "c@example.com", "type": "transactional"}), 403, "1100")
    assert error["message"] == "Recipient could not be updated - Compliance"
    assert_error(api.put(f"{URL}/c@example.com", {"transactional": True}, format="json"), 403, "1100")
    error = assert_error(api.delete(f"{URL}/c@example.com"), 403, "1100")
    assert error["message"] == "Recipient could not be removed - Compliance"
    # the whole bulk request is refused, the good entry included
    put(
        api,
        {"recipient": "new@example.com", "type": "transactional"},
        {"recipient": "c@example.com", "type": "transactional"},
    )
    assert_error(api.get(f"{URL}/new@example.com"), 404, "1600")
    (entry,) = found(api, "c@example.com")["results"]
    assert entry["source"] == "Compliance" and entry["description"] == "staff"
    # the other type is the API's to manage
    assert api.put(f"{URL}/c@example.com", {"type": "non_transactional"}, format="json").status_code == 200
    assert api.delete(f"{URL}/c@example.com", {"type": "non_transactional"}, format="json").status_code == 204


def test_summary_counts_by_source_and_type(api):
    from suppression.services import suppression_add

    put(api, {"recipient": "a@example.com", "transactional": True, "non_transactional": True})
    suppression_add(recipient="b@example.com", types=["non_transactional"], source="List Unsubscribe", description="")
    response = api.get(f"{URL}/summary")
    assert response.status_code == 200
    assert response.json()["results"] == {
        "manually_added": 2,
        "bounce_rule": 0,
        "spam_complaint": 0,
        "list_unsubscribe": 1,
        "unsubscribe_link": 0,
        "compliance": 0,
        "transactional": 1,
        "non_transactional": 2,
        "total": 3,
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", URL), ("put", URL), ("get", f"{URL}/summary"), ("get", f"{URL}/a@example.com"),
     ("put", f"{URL}/a@example.com"), ("delete", f"{URL}/a@example.com")],
)  # fmt: skip
def test_every_operation_needs_the_grant(api_with, method, path):
    assert_error(getattr(api_with("recipient_lists/manage"), method)(path), 403, "1100")
    assert_error(getattr(api_with(), method)(path), 401, "1303")


def test_paths_work_with_a_trailing_slash(api):
    assert (
        api.put(
            f"{URL}/", {"recipients": [{"recipient": "a@example.com", "type": "transactional"}]}, format="json"
        ).status_code
        == 200
    )
    assert api.get(f"{URL}/").json()["total_count"] == 1
    assert api.get(f"{URL}/summary/").status_code == 200


def test_wrong_methods_are_405(api):
    assert_error(api.post(URL, {}, format="json"), 405, "1102")
    assert_error(api.delete(URL), 405, "1102")
    assert_error(api.put(f"{URL}/summary", {}, format="json"), 405, "1102")
