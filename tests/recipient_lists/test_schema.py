"""``/api/v1/recipient-lists`` through its declared schema (issue 10 §2): bounds named in the
error, per-recipient problems still per recipient, answers as the document says."""

from __future__ import annotations

import pytest

from tests.helpers import assert_documented, assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/recipient-lists"
RECIPIENTS = [{"address": {"email": "ada@example.com", "name": "Ada"}, "tags": ["a"]}, {"address": "bob@example.com"}]


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "n" * 65), ("description", "d" * 1025), ("id", "i" * 65), ("attributes", [1]), ("recipients", {})],
)
def test_a_field_out_of_its_declared_bounds_is_422_1300_naming_it(api, field, value):
    response = api.post(URL, {"recipients": RECIPIENTS, field: value}, format="json")
    error = assert_error(response, 422, "1300")
    assert error["description"].startswith(f"{field}:")


def test_put_checks_the_same_declarations(api):
    assert api.post(URL, {"id": "l", "recipients": RECIPIENTS}, format="json").status_code == 200
    error = assert_error(api.put(f"{URL}/l", {"name": 5}, format="json"), 422, "1300")
    assert error["description"].startswith("name:")


def test_one_malformed_recipient_is_a_rcpt_to_error_not_a_refused_list(api):
    response = api.post(URL, {"id": "l", "recipients": [*RECIPIENTS, {"address": ["x"]}, "y"]}, format="json")
    payload = response.json()
    assert response.status_code == 200
    assert payload["errors"][0]["code"] == "5000"
    assert payload["results"]["total_accepted_recipients"] == 2
    assert len(payload["results"]["rcpt_to_errors"]) == 2


@pytest.mark.parametrize("query", ["?num_rcpt_errors=-1", "?num_rcpt_errors=1.5"])
def test_a_bad_num_rcpt_errors_is_400_1200_naming_it(api, query):
    error = assert_error(api.post(URL + query, {"recipients": RECIPIENTS}, format="json"), 400, "1200")
    assert error["description"].startswith("num_rcpt_errors:")


def test_a_show_recipients_that_is_not_a_boolean_is_400_1200_naming_it(api):
    api.post(URL, {"id": "l", "recipients": RECIPIENTS}, format="json")
    error = assert_error(api.get(f"{URL}/l?show_recipients=maybe"), 400, "1200")
    assert error["description"].startswith("show_recipients:")


@pytest.mark.slow
def test_answers_match_the_document(api):
    created = api.post(URL, {"id": "l", "recipients": [*RECIPIENTS, {"address": "bad"}]}, format="json")
    assert_documented(api, created, URL, "post")
    assert_documented(api, api.get(URL), URL, "get")
    assert_documented(api, api.get(f"{URL}/l?show_recipients=true"), URL + "/{list_id}", "get")
    assert_documented(api, api.get(f"{URL}/l"), URL + "/{list_id}", "get")
    assert_documented(api, api.put(f"{URL}/l", {"recipients": RECIPIENTS}, format="json"), URL + "/{list_id}", "put")
    assert_documented(api, api.put(f"{URL}/l", {"name": "L"}, format="json"), URL + "/{list_id}", "put")
    assert_documented(api, api.post(URL, {"recipients": [{"address": "bad"}]}, format="json"), URL, "post")
