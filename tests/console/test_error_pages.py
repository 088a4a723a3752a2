"""No view's exception is Django's debug page, ENGAGE_DEBUG on or off (scripts/run sets it):
a 500 is a plain page (the API's JSON envelope on /api/), a bad request a plain 400, a CSRF
refusal a page saying what to do (found by a newcomer: a report date and a second tab)."""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import Client, override_settings
from django.urls import include, path

DEBUG_MARKERS = ("Traceback", "DEBUG = True", "technical_500", "Request information", "Python Path")


def _boom(request):
    raise RuntimeError("a bug in a view")


def _suspicious(request):
    raise SuspiciousOperation("a mangled request")


urlpatterns = [
    path("boom/", _boom),
    path("api/v1/boom", _boom),
    path("suspicious/", _suspicious),
    path("", include("engage.urls")),
]


def _no_debug_page(response) -> str:
    page = response.content.decode()
    for marker in DEBUG_MARKERS:
        assert marker not in page, (marker, page[:500])
    return page


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.urls(__name__)
def test_a_views_exception_is_a_plain_500_page_and_is_logged(client, db, debug, caplog):
    with override_settings(DEBUG=debug):
        response = client.get("/boom/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
    assert "Server error" in _no_debug_page(response)
    assert "a bug in a view" in caplog.text  # the traceback is in the log, not the page


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.urls(__name__)
def test_on_the_api_it_is_the_json_envelope(client, db, debug):
    with override_settings(DEBUG=debug):
        response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json()["errors"][0]["message"]
    _no_debug_page(response)


@pytest.mark.urls(__name__)
def test_a_suspicious_request_is_a_plain_400(client, db):
    with override_settings(DEBUG=True):
        response = client.get("/suspicious/")
    assert response.status_code == 400
    _no_debug_page(response)


def test_a_stale_form_is_a_page_saying_what_to_do_not_djangos_csrf_help(db, django_user_model):
    django_user_model.objects.create_user("boss", password="pw-for-tests", is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    with override_settings(DEBUG=True):
        response = browser.post("/admin/login/", {"username": "boss", "password": "pw-for-tests"})
    assert response.status_code == 403
    assert "This form has expired" in _no_debug_page(response)


@pytest.mark.parametrize("to", ["9999-12-31", "9999-12-30", "9999-01-01", "0001-01-01"])
def test_the_reports_far_dates_are_its_400_not_a_500(admin_client, to):
    with override_settings(DEBUG=True):
        response = admin_client.get("/report/", {"to": to, "from": "2024-01-01"})
    assert response.status_code == 400, response.content[:300]
    _no_debug_page(response)


@pytest.mark.parametrize(
    "page", ["/", "/report/", "/tutorial/", "/messages/", "/transmissions/", "/transmissions/1/", "/report/sink/"]
)
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_a_reading_page_answers_405_to_a_method_that_would_change_something(admin_client, page, method):
    """An attacker's finding: DELETE, PUT or TRACE on a reading page answered 200 with the page."""
    response = getattr(admin_client, method)(page)
    assert response.status_code == 405, (page, method, response.status_code)
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}
    assert admin_client.head(page).status_code in (200, 404)
