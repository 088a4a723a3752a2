"""The click and open fast path (engage/fastpath.py): the same answers as Django's request
cycle, without it, and everything else left to Django."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

from engage.fastpath import _CLICK, _OPEN
from tests.tracking.helpers import WsgiClient

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("event_stream")


@pytest.fixture
def tracking_process(settings):
    settings.MIDDLEWARE = settings.TRACKING_MIDDLEWARE
    settings.ROOT_URLCONF = "engage.urls_tracking"


def _answer(response):
    return response.status_code, sorted(response.items()), response.content


def _requests(tokens):
    click = tokens.click("https://example.com/a?b=1", "Landing")
    return [
        ("get", f"/f/{click}", {}),
        ("get", f"/f/some/sub/link/{click}", {"HTTP_USER_AGENT": "UA/2", "REMOTE_ADDR": "198.51.100.7"}),
        ("head", f"/f/{click}", {}),
        ("get", f"/q/{tokens.open('open')}", {}),
        ("get", f"/q/{tokens.open('initial_open')}?x=1", {}),
        ("get", f"/f/{click[:-3]}AAA", {}),
        ("get", f"/q/{click}", {}),
    ]


def test_every_answer_and_event_is_the_one_django_gives(tracking_process, tokens, buffered):
    fast, slow = WsgiClient(), WsgiClient()
    slow.fastpath.enabled = False
    for method, path, extra in _requests(tokens):
        answers = []
        for client in (fast, slow):
            before = len(buffered())
            answers.append((_answer(client.request(method, path, **extra)), buffered()[before:]))
        (fast_answer, fast_events), (slow_answer, slow_events) = answers
        assert fast_answer == slow_answer, path
        strip = ("event_id", "timestamp")
        assert [{k: v for k, v in e.items() if k not in strip} for e in fast_events] == [
            {k: v for k, v in e.items() if k not in strip} for e in slow_events
        ], path


def test_clicks_and_opens_never_reach_djangos_handler(tracking_process, tokens, buffered):
    client = WsgiClient()

    def refuse(environ, start_response):
        raise AssertionError(f"Django's handler was called for {environ['PATH_INFO']}")

    client.fastpath.app = refuse
    response = client.get(f"/f/x/{tokens.click('https://example.com/', 'L')}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/"
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert client.get(f"/q/{tokens.open('open')}").status_code == 200
    assert client.get("/f/not-a-valid-token").status_code == 404
    assert [e["type"] for e in buffered()] == ["click", "open"]


@pytest.mark.parametrize(
    "method, path, extra",
    [
        ("post", "/f/TOKEN", {}),
        ("get", "/u/TOKEN", {}),
        ("get", "/f/TOKEN?x=%00", {}),
        ("get", "/q/TOKEN", {"HTTP_HOST": "evil.example"}),
        ("get", "/f/", {}),
        ("get", "/f/a b", {}),
        ("get", "/api/v1/transmissions", {}),
    ],
)
def test_everything_else_goes_to_django(tracking_process, settings, tokens, method, path, extra):
    settings.ALLOWED_HOSTS = ["testserver"]
    client = WsgiClient()
    called = []

    def django(environ, start_response):
        called.append(environ["PATH_INFO"])
        return client.django(environ, start_response)

    client.fastpath.app = django
    client.request(method, path.replace("TOKEN", tokens.click("https://example.com/", "L")), **extra)
    assert len(called) == 1


def test_a_host_outside_allowed_hosts_gets_djangos_400(tracking_process, settings, tokens, buffered):
    settings.ALLOWED_HOSTS = ["track.example.com"]
    response = WsgiClient().get(f"/f/{tokens.click('https://example.com/', 'L')}", HTTP_HOST="evil.example")
    assert response.status_code == 400 and buffered() == []


@pytest.mark.parametrize("setting, value", [("SECURE_SSL_REDIRECT", True), ("PREPEND_WWW", True),
                                            ("DISALLOWED_USER_AGENTS", ["x"])])  # fmt: skip
def test_settings_that_make_django_do_more_turn_the_fast_path_off(tracking_process, settings, setting, value):
    setattr(settings, setting, value)
    assert WsgiClient().fastpath.enabled is False


def test_a_view_that_raises_is_a_logged_plain_500(tracking_process, tokens, monkeypatch, caplog):
    from tracking import views

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "_verify", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = WsgiClient().get(f"/f/{tokens.click('https://example.com/', 'L')}")
    assert response.status_code == 500 and response.content == b"Server Error\n"
    assert "boom" in caplog.text


@pytest.mark.parametrize(
    "path", ["/f/abc", "/f/x/y/abc_-9", "/q/abc", "/q/x/abc", "/f/", "/f/a.b", "/q/abc/", "/f//abc", "/f/x/"]
)
def test_the_fast_paths_patterns_are_the_routes_of_tracking_urls(tracking_process, path):
    pattern = _CLICK if path.startswith("/f/") else _OPEN
    match = pattern.fullmatch(path)
    try:
        resolved = resolve(path, "tracking.urls")
    except Resolver404:
        resolved = None
    assert (match is not None) == (resolved is not None), path
    if match is not None:
        assert resolved.kwargs["token"] == match.group("token")


def test_the_application_servers_run_has_the_fast_path():
    # In a process of its own: importing engage.wsgi runs the start-up checks with the
    # session's keys (this module's tests sign with fixed test keys).
    code = "from engage import wsgi, fastpath; assert isinstance(wsgi.application.app, fastpath.TrackingFastPath)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "ENGAGE_SERVE": "tracking"})


def _hit(app, path: str, method: str = "get"):
    """``path`` through ``app`` as a WSGI server calls it: status, headers, body, and the
    result (closed, as the server closes it)."""
    from django.test import RequestFactory

    answer: dict = {}
    result = app(getattr(RequestFactory(), method)(path).environ, lambda s, h, e=None: answer.update(s=s, h=h))
    body = b"".join(result)
    result.close()
    return answer["s"], sorted(answer["h"]), body, result


def test_a_hit_ends_with_close_old_connections_alone_while_only_djangos_receivers_listen(
    tracking_process, tokens, buffered, monkeypatch
):
    """request_finished.s three Django receivers cost a hit 30-40 µs at load 9 (engage/fastpath.py):
    a hit runs the one that matters to it, and answers what Django's own cycle answers."""
    from django.core.handlers.wsgi import WSGIHandler

    from engage import fastpath

    closes: list[bool] = []
    monkeypatch.setattr(fastpath, "close_old_connections", lambda: closes.append(True))
    fast = fastpath.TrackingFastPath(WSGIHandler())
    slow = WsgiClient()  # Django's request cycle
    slow.fastpath.enabled = False
    click = f"/f/{tokens.click('https://example.com/a?b=1', 'Landing')}"
    status, headers, body, result = _hit(fast, click)
    assert isinstance(result, fastpath._Answer) and closes == [True]
    assert (int(status.split()[0]), headers, body) == _answer(slow.get(click))
    assert _hit(fast, f"/q/{tokens.open('open')}")[0] == "200 OK" and closes == [True, True]
    assert [e["type"] for e in buffered()] == ["click", "click", "open"]


def test_a_receiver_anyone_else_connects_to_request_finished_hears_every_hit(
    tracking_process, tokens, buffered, transactional_db
):
    # transactional_db: Django's own close_old_connections runs too, and may close the connection.
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished

    from engage.fastpath import TrackingFastPath

    heard: list[object] = []

    def receiver(sender, **kwargs):
        heard.append(sender)

    app = TrackingFastPath(WSGIHandler())  # made before the receiver is connected
    request_finished.connect(receiver)
    try:
        _hit(app, f"/f/{tokens.click('https://example.com/a', 'A')}")
        _hit(app, f"/q/{tokens.open('open')}", method="head")
    finally:
        request_finished.disconnect(receiver)
    assert heard == [TrackingFastPath, TrackingFastPath]
    _hit(app, f"/q/{tokens.open('open')}")
    assert len(heard) == 2
