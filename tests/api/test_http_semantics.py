"""HTTP semantics on every route (issue 10, Deliver 3), enumerated from the URL resolver so a
new route is covered without touching this file.

HEAD never carries a body (RFC 9110 §9.3.2); OPTIONS is 200 with Allow for a valid key
(§9.3.7); any method on an unknown /api/ path is the 404 envelope, never Django's CSRF page;
a chunked request body is read or refused with 411, never read as empty; a 401 carries
WWW-Authenticate (§11.6.1). The in-process tests call ``engage.wsgi.application`` itself (the
test client strips HEAD bodies and skips wsgi.py); one test runs the real gunicorn.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from engage.api.views import ApiView
from tests.helpers import assert_error, database_url

ROOT = Path(__file__).resolve().parents[2]
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_SAMPLE = {"uuid": str(uuid.UUID(int=7)), "int": "7", "path": "x/y"}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _concrete(route: str) -> str:
    """A path the route matches, with a sample for each converter (an id that does not exist)."""
    return "/" + _CONVERTER.sub(lambda m: _SAMPLE.get(m.group(1) or "str", "no-such-id"), route)


def api_routes() -> list[tuple[str, type[ApiView]]]:
    """(path, view class) of every /api/ route served by an ApiView."""
    found = []
    for route, callback in _routes():
        view_class = getattr(callback, "view_class", None)
        if view_class is not None and issubclass(view_class, ApiView):
            found.append((_concrete(route), view_class))
    assert len(found) >= 24, found  # the SparkPost resources at the time of issue 10
    return found


def every_get_path() -> list[str]:
    """A path for every plain route (API, docs, tracking, report, admin) and an unknown one."""
    paths = [_concrete(route) for route, _ in _routes() if not route.startswith("^") and "(?P" not in route]
    token = "AQAB" + "A" * 40  # well-formed base64url that does not verify
    return [*paths, f"/q/{token}", f"/f/{token}", f"/f/name/{token}", f"/u/{token}", "/api/v1/nope", "/nope"]


def _implemented(view_class: type[ApiView]) -> set[str]:
    methods = {m.upper() for m in ("get", "post", "put", "delete") if hasattr(view_class, m)}
    return methods | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"}


@pytest.fixture
def wsgi(db):
    """Call the real WSGI application (engage/wsgi.py; ``app="django"``: Django's handler
    without our WSGI middleware) in this test's transaction; returns (status, headers, body)."""
    from engage.wsgi import application, django_application

    def call(method: str, path: str, body: bytes = b"", app: str = "engage", **extra):
        environ = RequestFactory().generic(method, path, body, **extra).environ
        environ["wsgi.input"] = io.BytesIO(body)
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = int(status.split()[0]), dict(headers)

        # As the test client does: a request's start and end must not close the test's connection.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = (application if app == "engage" else django_application)(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return captured["status"], captured["headers"], content

    return call


def test_head_on_every_route_has_no_body_and_the_headers_of_get(wsgi, make_key):
    key = make_key()
    checked = 0
    for path in every_get_path():
        get_status, get_headers, _ = wsgi("GET", path, HTTP_AUTHORIZATION=key)
        status, headers, body = wsgi("HEAD", path, HTTP_AUTHORIZATION=key)
        assert body == b"", (path, status, body[:200])
        assert status == get_status, path
        assert headers.get("Content-Type") == get_headers.get("Content-Type"), path
        # Content-Length of the body Django made for this HEAD (as for GET), or none at all
        _, _, unwrapped = wsgi("HEAD", path, HTTP_AUTHORIZATION=key, app="django")
        if unwrapped:
            checked += 1
            assert headers.get("Content-Length", str(len(unwrapped))) == str(len(unwrapped)), path
    assert checked > 30


def test_head_on_the_template_list_with_content_has_no_body(wsgi, api):
    for n in range(20):
        body = {"id": f"t{n}", "name": "T", "content": {"from": "a@example.com", "subject": "s", "text": "x" * 1000}}
        assert api.post("/api/v1/templates", body, format="json").status_code == 200
    key = api._credentials["HTTP_AUTHORIZATION"]
    _, get_headers, get_body = wsgi("GET", "/api/v1/templates", HTTP_AUTHORIZATION=key)
    status, headers, body = wsgi("HEAD", "/api/v1/templates", HTTP_AUTHORIZATION=key)
    assert len(get_body) > 1000 and (status, body) == (200, b"")
    assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))


def test_options_with_a_key_is_200_with_allow_on_every_api_route(make_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=make_key("metrics/view"))  # OPTIONS needs no grant
    for path, view_class in api_routes():
        response = client.options(path)
        assert response.status_code == 200, (path, response.content[:300])
        assert response.content == b"", path
        assert set(response["Allow"].split(", ")) == _implemented(view_class), path


def test_options_without_a_key_is_401_with_a_challenge_on_every_api_route(db):
    for path, _ in api_routes():
        response = APIClient().options(path)
        assert_error(response, 401, "1303")
        assert response["WWW-Authenticate"] == 'Basic realm="engage"', path


def test_every_401_carries_www_authenticate(db):
    for path, view_class in api_routes():
        for method in _implemented(view_class) - {"HEAD"}:
            response = APIClient().generic(method, path, b"{}", content_type="application/json")
            assert response.status_code == 401, (method, path)
            assert response["WWW-Authenticate"] == 'Basic realm="engage"', (method, path)
            bad = APIClient()
            bad.credentials(HTTP_AUTHORIZATION="0" * 40)
            response = bad.generic(method, path, b"{}", content_type="application/json")
            assert response.status_code == 401 and "WWW-Authenticate" in response, (method, path)


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v2/templates", "/api/v1/templates/a/b/c", "/api/v1/webhooks/not-a-uuid", "/api/"]
)
def test_any_method_on_an_unknown_api_path_is_the_404_envelope_not_a_csrf_page(make_key, path):
    for key in (make_key(), None):
        client = APIClient(enforce_csrf_checks=True)
        if key:
            client.credentials(HTTP_AUTHORIZATION=key)
        client.cookies["csrftoken"] = "x" * 32  # as a browser that once visited the admin
        for method in METHODS:
            response = client.generic(method, path, b'{"a": 1}', content_type="application/json")
            if method == "HEAD":
                assert response.status_code == 404, (method, path)
                continue
            assert_error(response, 404, "1101")


def test_unsafe_methods_on_api_routes_are_not_subject_to_csrf(make_key):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=make_key())
    client.cookies["csrftoken"] = "x" * 32
    for path, view_class in api_routes():
        for method in _implemented(view_class) & {"POST", "PUT", "DELETE"}:
            response = client.generic(method, path, b"{", content_type="application/json")
            assert response["Content-Type"] == "application/json", (method, path)
            assert response.status_code != 403, (method, path, response.content[:200])


def test_the_admin_keeps_csrf(db):
    client = APIClient(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403


def _chunked() -> dict:
    return {"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": "application/json"}


def test_chunked_body_on_every_api_route_is_read_like_a_sized_one(wsgi, make_key):
    """A server that de-chunks (gunicorn: wsgi.input_terminated): the view sees the body, so
    invalid JSON gets the same answer as when it is sent with a Content-Length."""
    key = make_key()
    compared = 0
    for path, view_class in api_routes():
        for method in _implemented(view_class) & {"POST", "PUT"}:
            sized = wsgi(method, path, b"{", CONTENT_TYPE="application/json", HTTP_AUTHORIZATION=key)
            chunked = wsgi(method, path, b"{", HTTP_AUTHORIZATION=key, **_chunked(), **{"wsgi.input_terminated": True})
            assert chunked[0] == sized[0] and chunked[2] == sized[2], (method, path, chunked, sized)
            compared += sized[0] == 400
    assert compared >= 5  # the routes that parse before looking anything up answer 400 to "{"


def test_chunked_body_is_stored(wsgi, api):
    key = api._credentials["HTTP_AUTHORIZATION"]
    body = b'{"id": "chunky", "name": "Chunky", "content": {"from": "a@example.com", "subject": "s", "text": "t"}}'
    status, _, content = wsgi("POST", "/api/v1/templates", body, HTTP_AUTHORIZATION=key, **_chunked(),
                              **{"wsgi.input_terminated": True})  # fmt: skip
    assert status == 200, content
    assert api.get("/api/v1/templates/chunky?draft=true").json()["results"]["name"] == "Chunky"


def test_chunked_body_the_server_cannot_terminate_is_411_in_the_envelope(wsgi, make_key):
    """Django's runserver passes the raw socket: reading it to the end would hang."""
    key = make_key()
    for path, view_class in api_routes():
        for method in _implemented(view_class) & {"POST", "PUT", "DELETE"}:
            status, headers, content = wsgi(method, path, b"{}", HTTP_AUTHORIZATION=key, **_chunked())
            assert status == 411, (method, path)
            assert json.loads(content)["errors"][0]["code"] == "1300"
            assert headers["Content-Length"] == str(len(content))


def test_chunked_body_over_the_limit_is_413(wsgi, make_key, settings):
    settings.ENGAGE_MAX_REQUEST_BYTES = 100
    status, _, _ = wsgi("POST", "/api/v1/templates", b"{" + b" " * 200 + b"}", HTTP_AUTHORIZATION=make_key(),
                        **_chunked(), **{"wsgi.input_terminated": True})  # fmt: skip
    assert status == 413


# --- the real server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(transactional_db, settings, tmp_path):
    """gunicorn (gthread, as scripts/run and docker-compose.yml) on a loopback port, serving
    the test database; yields its port."""
    from django.db import connection

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "ENGAGE_SECRET_KEY": settings.SECRET_KEY,
        "ENGAGE_TRACKING_KEYS": ",".join(settings.ENGAGE_TRACKING_KEYS),
        "ENGAGE_VAR_DIR": str(tmp_path / "var"),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "engage.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--worker-class", "gthread", "--threads", "2"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/api/v1/nope", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or its first answer is slow
                assert process.poll() is None, log.read_text()
                time.sleep(0.2)
        else:
            pytest.fail(log.read_text())
        yield port
    finally:
        process.terminate()
        process.wait(20)


def _read_response(sock_file) -> tuple[str, dict, bytes]:
    status = sock_file.readline().decode().strip()
    headers = {}
    while (line := sock_file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, sock_file.read(int(headers.get("content-length", 0)))


@pytest.mark.slow
def test_gunicorn_keeps_a_connection_in_step_after_head_and_reads_chunked_bodies(gunicorn, make_key):
    key = make_key()
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=10) as sock:
        sock_file = sock.makefile("rb")
        for path in ("/api/v1/templates", "/api/v1/nope", "/q/AQABAAAA", "/report/"):
            head = f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {key}\r\n\r\n"
            sock.sendall(head.encode())
            status, headers, _ = sock_file.readline().decode(), None, None
            while sock_file.readline() not in (b"\r\n", b""):
                pass  # a HEAD answer ends with its headers, whatever Content-Length says
            body = (
                b'{"id": "chunky", "name": "Chunky", "content": {"from": "a@example.com", "subject": "s", "text": "t"}}'
            )
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
            sock.sendall(
                f"POST /api/v1/templates HTTP/1.1\r\nHost: localhost\r\nAuthorization: {key}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                + chunks
            )
            status, headers, content = _read_response(sock_file)
            assert status.startswith("HTTP/1.1 "), (path, status)
            if path == "/api/v1/templates":
                assert status == "HTTP/1.1 200 OK", content
                assert b'"id":"chunky"' in content.replace(b" ", b"")
            else:
                assert status == "HTTP/1.1 409 Conflict", content  # the same id again: the body was read
    response = requests.options(f"http://127.0.0.1:{gunicorn}/api/v1/templates", headers={"Authorization": key})
    assert response.status_code == 200 and "OPTIONS" in response.headers["Allow"]
    response = requests.get(f"http://127.0.0.1:{gunicorn}/api/v1/templates")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Basic realm="engage"'
