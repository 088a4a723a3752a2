"""Inputs from issue 10 that answered 500: now a 4xx in the SparkPost envelope naming the field,
and nothing stored."""

from __future__ import annotations

import json

import pytest

TEMPLATE = {
    "id": "hostile",
    "name": "Hostile",
    "content": {"from": "team@example.com", "subject": "Hi", "text": "Hello"},
}


def post_raw(api, path: str, text: str):
    return api.generic("POST", path, text.encode("utf-8", "surrogatepass"), content_type="application/json")


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"errors"}
    return body["errors"][0]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"id": "a\\u0000b", "name": "x"}', "id"),
        ('{"name": "Hi \\ud83d there"}', "name"),
        ('{"name": "x", "content": {"subject": "\\udc00"}}', "content.subject"),
        ('{"name": "x", "content": {"headers": {"X-\\u0000": "v"}}}', "content.headers"),
    ],
)
def test_nul_or_lone_surrogate_anywhere_is_400_naming_it(api, text, where):
    response = post_raw(api, "/api/v1/templates", text)
    assert response.status_code == 400
    assert error(response)["code"] == "1300"
    assert error(response)["description"].startswith(where)
    assert api.get("/api/v1/templates").json()["results"] == []


def test_escaped_backslash_before_u0000_is_plain_text(api):
    body = dict(TEMPLATE, name="C:\\u0000 path")
    response = api.post("/api/v1/templates", body, format="json")
    assert response.status_code == 200
    assert api.get("/api/v1/templates/hostile").json()["results"]["name"] == "C:\\u0000 path"


def test_a_surrogate_pair_is_one_character_and_accepted(api):
    response = post_raw(api, "/api/v1/templates", json.dumps(dict(TEMPLATE, name="Hi \U0001f600")))
    assert response.status_code == 200
    assert api.get("/api/v1/templates/hostile").json()["results"]["name"] == "Hi \U0001f600"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_are_400(api, number):
    text = (
        '{"recipients": [{"address": "a@example.com"}], '
        '"content": {"from": "f@example.com", "subject": "s", "text": "t"}, '
        f'"metadata": {{"x": {number}}}}}'
    )
    response = post_raw(api, "/api/v1/transmissions", text)
    assert response.status_code == 400
    assert error(response)["code"] == "1300"
    assert api.get("/api/v1/transmissions").json()["results"] == []


def test_non_finite_number_in_substitution_data_of_preview_is_400(api):
    api.post("/api/v1/templates", dict(TEMPLATE, published=True), format="json")
    response = post_raw(api, "/api/v1/templates/hostile/preview", '{"substitution_data": {"n": NaN}}')
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path", ["/api/v1/templates/%00", "/api/v1/templates/a%00b/preview", "/api/v1/templates?draft=%00"]
)
def test_nul_in_a_url_is_400_envelope(api, path):
    response = api.get(path) if "preview" not in path else api.post(path, {}, format="json")
    assert response.status_code == 400
    assert error(response)["code"] == "1200"


def test_nul_in_a_tracking_url_is_a_plain_404(client):
    assert client.get("/f/abc%00def").status_code == 404


def test_wrong_types_name_the_field(api):
    response = api.post("/api/v1/templates", {"name": 5, "content": TEMPLATE["content"]}, format="json")
    assert response.status_code == 422
    assert error(response)["code"] == "1300"
    assert error(response)["description"].startswith("name:")
    response = api.post(
        "/api/v1/templates", {"name": "x", "published": "yes", "content": TEMPLATE["content"]}, format="json"
    )
    assert error(response)["description"].startswith("published:")


def test_overlong_name_is_422_naming_it(api):
    response = api.post("/api/v1/templates", dict(TEMPLATE, name="n" * 1025), format="json")
    assert response.status_code == 422
    assert "name" in error(response)["description"]


def test_bad_boolean_query_is_400_naming_it(api):
    response = api.get("/api/v1/templates?draft=maybe")
    assert response.status_code == 400
    assert error(response)["code"] == "1200"
    assert error(response)["description"].startswith("draft:")


@pytest.mark.parametrize(
    ("content", "description"),
    [
        ({"from": 5}, "content.from: Input should be a valid string; or Input should be a valid dictionary"),
        ({"from": {"email": 5}}, "content.from.email: Input should be a valid string"),
        ({"from": "a@example.com", "headers": {"X-A": 5}}, "content.headers.X-A: Input should be a valid string"),
    ],
)
def test_a_field_taking_two_shapes_is_named_as_the_client_wrote_it(api, content, description):
    response = api.post("/api/v1/templates", {"name": "x", "content": content}, format="json")
    assert response.status_code == 422
    assert error(response)["description"] == description
