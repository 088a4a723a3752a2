"""API requests and the console's search pages run under ENGAGE_API_STATEMENT_TIMEOUT_MS (issue 11, bounded work)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def _slow_list(**kwargs):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    return []


def test_a_query_past_the_timeout_is_503_1502_saying_it_took_too_long(api, settings, monkeypatch):
    settings.ENGAGE_API_STATEMENT_TIMEOUT_MS = 50
    monkeypatch.setattr("templates_app.views.template_list", _slow_list)
    error = assert_error(api.get("/api/v1/templates"), 503, "1502")
    assert "50 ms" in error["description"] and "ENGAGE_API_STATEMENT_TIMEOUT_MS" in error["description"]


def test_the_timeout_is_reset_after_the_request(api, settings):
    settings.ENGAGE_API_STATEMENT_TIMEOUT_MS = 1234
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    assert api.get("/api/v1/templates").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before


def test_the_timeout_applies_during_an_api_request(api, settings, monkeypatch):
    settings.ENGAGE_API_STATEMENT_TIMEOUT_MS = 4321
    seen = []

    def list_(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return []

    monkeypatch.setattr("templates_app.views.template_list", list_)
    assert api.get("/api/v1/templates").status_code == 200
    assert seen == ["4321ms"]


def test_requests_outside_the_api_do_not_set_it(client, settings):
    settings.ENGAGE_API_STATEMENT_TIMEOUT_MS = 4321
    client.get("/f/not-a-token")
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "4321ms"


def test_the_consoles_search_pages_run_under_it_and_say_so_when_it_stops_one(admin_client, settings, monkeypatch):
    # Found by an attacker: /messages/ with any window ran without the API's timeout.
    settings.ENGAGE_API_STATEMENT_TIMEOUT_MS = 50

    def slow(**kwargs):
        _slow_list()

    monkeypatch.setattr("console.views.messages.message_timelines", slow)
    response = admin_client.get("/messages/", {"recipients": "ada@example.com"})
    assert response.status_code == 503
    page = response.content.decode()
    assert "This search took too long" in page and "50 ms" in page and "Traceback" not in page
