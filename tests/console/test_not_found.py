"""No page of the web process is Django's debug 404 (it lists every route), ENGAGE_DEBUG on
(scripts/run) or off: an unknown /api/ path is SparkPost's JSON 404 (1101), any other path,
and a view that raises Http404, the console's page with Engage's name and a link to /."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.helpers import assert_error

DEBUG_PAGE_MARKERS = ("Using the URLconf", "technical_404", "Django tried these URL patterns", "DEBUG = True")
HOSTILE_PATHS = [
    "/nope",
    "/report/nope",
    "/<script>alert(1)</script>",
    "/%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/%ff%fe",
    "/a%0d%0aSet-Cookie:x=1",
    "/" + "x" * 5000,
    "/static/nope.css",
]


def assert_console_404(response, shown: str | None = None) -> str:
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert "<title>Not found · Engage</title>" in html and '<a href="/" id="home">' in html
    for marker in DEBUG_PAGE_MARKERS:
        assert marker not in html
    if shown is not None:
        assert f'<code id="path">{shown}</code>' in html
    return html


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_an_unknown_page_is_the_console_404_page(client, db, debug, path):
    with override_settings(DEBUG=debug):
        for method in (client.get, client.post, client.head):
            response = method(path)
            assert response.status_code == 404, (method, path)
        html = assert_console_404(client.get(path))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'id="suggestion"' not in html


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_a_path_that_looks_like_another_host_is_no_link_there(client, db, debug):
    with override_settings(DEBUG=debug):
        # PATH_INFO as a server hands it over (the test client would read "//host" as a host)
        html = assert_console_404(client.get("/", PATH_INFO="//evil.example/"), "//evil.example/")
        assert 'href="//evil' not in html
        html = assert_console_404(client.get("/", PATH_INFO="//admin"))
        assert 'id="suggestion"' not in html


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_a_nul_in_the_path_is_a_bare_404_before_any_page(client, db, debug):
    with override_settings(DEBUG=debug):
        response = client.get("/x%00y")
    assert (response.status_code, response.content) == (404, b"")  # engage.api.guards


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
@pytest.mark.parametrize("path", ["/api/nope", "/api", "/api/v1/nope/", "/api/<script>", "/api/v2/templates"])
def test_an_unknown_api_path_keeps_the_json_404(client, db, debug, path):
    with override_settings(DEBUG=debug):
        for method in (client.get, client.post, client.delete):
            assert_error(method(path), 404, "1101")


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_a_view_that_raises_http404_answers_the_console_page(client, staff_user, debug, tmp_path):
    client.force_login(staff_user)
    with override_settings(DEBUG=debug, ENGAGE_SINK_DIR=tmp_path):
        assert_console_404(client.get("/admin/no_such_app/"), "/admin/no_such_app/")
        assert_console_404(client.get("/report/sink/missing.eml"), "/report/sink/missing.eml")


def test_a_page_typed_without_its_slash_is_suggested(client, db):
    html = assert_console_404(client.get("/admin"), "/admin")
    assert '<p id="suggestion">Did you mean <a href="/admin/">/admin/</a>?</p>' in html
    assert 'href="/report/"' in assert_console_404(client.get("/report"))


def test_a_long_path_is_shown_cut(client, db):
    html = assert_console_404(client.get("/" + "y" * 5000))
    assert "y" * 199 + "…</code>" in html and "y" * 201 not in html


def test_the_404_page_offers_a_sign_in_when_signed_out_and_not_when_signed_in(client, staff_user):
    html = assert_console_404(client.get("/nope"))
    assert '<p id="sign-in">You are not signed in: <a href="/admin/login/?next=/">sign in</a>' in html
    client.force_login(staff_user)
    assert 'id="sign-in"' not in assert_console_404(client.get("/nope"))
