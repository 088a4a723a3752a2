"""Reserved substitution-data keys (SPEC B §4.2) are refused at both levels of a transmission."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error
from transmissions.models import Message

URL = "/api/v1/transmissions"
CONTENT = {"from": "team@example.com", "subject": "Hi {{name}}", "text": "Hello {{name}}"}


def post(api, **overrides):
    data = {"content": CONTENT, "recipients": [{"address": "a@example.com"}]}
    data.update(overrides)
    return api.post(URL, data, format="json")


@pytest.mark.parametrize("key", ["email", "address", "return_path", "env_from", "email_id", "end", "if"])
def test_a_reserved_transmission_substitution_key_is_422_1300_naming_it(api, key):
    error = assert_error(post(api, substitution_data={"name": "Ann", key: "x"}), 422, "1300")
    assert f"substitution_data key '{key}' is reserved" in error["description"]
    assert not Message.objects.exists()


def test_a_reserved_recipient_substitution_key_rejects_that_recipient_only(api):
    recipients = [
        {"address": "ok@example.com", "substitution_data": {"name": "Ok"}},
        {"address": "bad@example.com", "substitution_data": {"name": "Bad", "email": "spoof@example.net"}},
        {"address": "also-ok@example.com"},
    ]
    response = post(api, recipients=recipients)
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["errors"][0]["code"] == "2000"
    assert payload["results"]["total_accepted_recipients"] == 2
    assert payload["results"]["total_rejected_recipients"] == 1
    [error] = payload["results"]["rcpt_to_errors"]
    assert error["code"] == "1300"
    assert error["description"].startswith("recipients[1]: substitution_data key 'email' is reserved")
    emails = set(Message.objects.values_list("email", flat=True))
    assert emails == {"ok@example.com", "also-ok@example.com"}


def test_keys_that_only_look_like_reserved_words_are_accepted(api):
    response = post(api, substitution_data={"End": 1, "emails": 2, "if_": 3, "dynamic_html": {}})
    assert response.status_code == 200, response.content


def test_a_stored_list_refuses_a_recipient_with_a_reserved_key(api):
    response = api.post(
        "/api/v1/recipient-lists",
        {
            "id": "reserved",
            "recipients": [
                {"address": "a@example.com"},
                {"address": "b@example.com", "substitution_data": {"while": 1}},
            ],
        },
        format="json",
    )
    body = response.json()
    assert "substitution_data key 'while' is reserved" in str(body), body
