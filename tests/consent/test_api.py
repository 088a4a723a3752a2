"""``/api/v1/tracking-consent`` against the real database (SPEC A.5, "Tracking consent")."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/tracking-consent"


def put(api, *records):
    return api.put(URL, {"recipients": list(records)}, format="json")


def test_bulk_put_records_lower_cased_and_get_shows_the_current_state_and_history(api):
    response = put(
        api,
        {"recipient": "Ada@Example.com", "consent": "granted", "source": "signup", "evidence": "box ticked"},
        {"recipient": "ada@example.com", "consent": "denied", "source": "prefs"},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"results": {"message": "Tracking consent recorded", "count": 2}}
    body = api.get(f"{URL}/ADA@example.com").json()["results"]
    assert (body["recipient"], body["consent"], body["source"]) == ("ada@example.com", "denied", "prefs")
    assert body["recorded_at"].endswith("+00:00")
    assert [(r["consent"], r["evidence"]) for r in body["history"]] == [("denied", ""), ("granted", "box ticked")]


def test_single_put_adds_a_row_to_the_history(api):
    assert api.put(f"{URL}/bob@example.com", {"consent": "denied"}, format="json").status_code == 200
    assert api.put(f"{URL}/bob%40example.com", {"consent": "granted"}, format="json").status_code == 200
    body = api.get(f"{URL}/bob@example.com").json()["results"]
    assert body["consent"] == "granted" and [r["consent"] for r in body["history"]] == ["granted", "denied"]


def test_search_filters_current_states_and_pages_by_address(api):
    put(
        api,
        {"recipient": "a@example.com", "consent": "denied"},
        {"recipient": "b@example.com", "consent": "granted"},
        {"recipient": "c@example.com", "consent": "denied"},
        {"recipient": "b@example.com", "consent": "denied"},
    )
    first = api.get(f"{URL}?consent=denied&per_page=2").json()
    assert first["total_count"] == 3
    assert [r["recipient"] for r in first["results"]] == ["a@example.com", "b@example.com"]
    (link,) = first["links"]
    assert link["rel"] == "next"
    second = api.get(link["href"]).json()
    assert [r["recipient"] for r in second["results"]] == ["c@example.com"] and second["links"] == []
    assert api.get(f"{URL}?consent=granted").json()["total_count"] == 0


def test_delete_erases_the_history_then_404(api):
    put(api, {"recipient": "a@example.com", "consent": "denied"})
    assert api.delete(f"{URL}/a@example.com").status_code == 204
    assert_error(api.get(f"{URL}/a@example.com"), 404, "1600")
    assert_error(api.delete(f"{URL}/a@example.com"), 404, "1600")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"recipients": [{"recipient": "a@example.com", "consent": "maybe"}]}, 422, "1300"),
        ({"recipients": [{"recipient": "a@example.com"}]}, 422, "1400"),
        ({"recipients": [{"recipient": "not an address", "consent": "denied"}]}, 422, "1300"),
        ({"recipients": []}, 422, "1300"),
        ({"recipients": "a@example.com"}, 422, "1300"),
        ([1, 2], 422, "1300"),
        ({"recipients": [{"recipient": "a@example.com", "consent": "denied", "evidence": "x" * 5000}]}, 422, "1300"),
    ],
)
def test_bad_bulk_bodies_are_refused_and_record_nothing(api, body, status, code):
    assert_error(api.put(URL, body, format="json"), status, code)
    assert api.get(URL).json()["total_count"] == 0


def test_bad_paths_and_queries(api):
    assert_error(api.get(f"{URL}/None"), 400, "1300")
    assert_error(api.put(f"{URL}/None", {"consent": "denied"}, format="json"), 400, "1300")
    assert_error(api.put(f"{URL}/a@example.com", {"consent": True}, format="json"), 422, "1300")
    assert_error(api.get(f"{URL}/nobody@example.com"), 404, "1600")
    assert_error(api.get(f"{URL}?per_page=0"), 400, "1200")
    assert_error(api.get(f"{URL}?consent=maybe"), 400, "1200")


@pytest.mark.parametrize(
    ("method", "path"), [("get", URL), ("put", URL), ("get", f"{URL}/a@example.com"),
                         ("put", f"{URL}/a@example.com"), ("delete", f"{URL}/a@example.com")],
)  # fmt: skip
def test_every_operation_needs_the_grant(api_with, method, path):
    assert_error(getattr(api_with("suppression_lists/manage"), method)(path), 403, "1100")


def test_the_grant_alone_is_enough(api_with):
    client = api_with("tracking_consent/manage")
    assert client.put(f"{URL}/a@example.com", {"consent": "denied"}, format="json").status_code == 200
    assert client.get(f"{URL}/a@example.com").status_code == 200
