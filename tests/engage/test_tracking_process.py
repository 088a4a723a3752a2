"""A tracking web process (ENGAGE_SERVE=tracking, engage/urls_tracking.py) serves opens,
clicks and unsubscribes alone, with a light middleware list and plain error answers (no
Django debug page, ENGAGE_DEBUG or not); the API process keeps serving them for links already
sent. scripts/Procfile's track line and compose's track service run it with the server
pinned in requirements.txt (bench/RESULTS.md, "Click redirect", says why)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests.helpers import fails_if_hung
from tests.tracking.helpers import MESSAGE, NEW_KEY, OLD_KEY, TEST_REDIS_DB

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
# The server of the tracking process: its distribution name, as pinned in requirements.txt.
SERVER = "granian"


@pytest.fixture
def stream(settings):
    """A private event stream (deleted afterwards) in the tracking tests' Redis database."""
    from tracking.events import events_redis

    settings.REDIS_URL = urlunsplit(urlsplit(settings.REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}"))
    settings.ENGAGE_EVENT_STREAM = f"engage:test:events:{uuid.uuid4().hex}"
    yield settings.ENGAGE_EVENT_STREAM
    events_redis().delete(settings.ENGAGE_EVENT_STREAM)


@pytest.fixture
def tokens(settings, stream):
    """Tokens of one message, signed with the tracking tests' keys."""
    from tracking.signing import tracking_signer

    settings.ENGAGE_TRACKING_KEYS = [OLD_KEY, NEW_KEY]
    return tracking_signer().for_message(issued_at=int(time.time()), **MESSAGE)


def _tracking_settings(*names: str) -> dict:
    """Settings as a tracking process computes them (ENGAGE_SERVE=tracking), read in a new process."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    env = {**os.environ, "ENGAGE_SERVE": "tracking", "DJANGO_SETTINGS_MODULE": "engage.settings"}
    result = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tracking_middleware() -> list[str]:
    return _tracking_settings("MIDDLEWARE")["MIDDLEWARE"]


@pytest.fixture
def tracking_stack(settings, tracking_middleware):
    """This test process answers as a tracking process does: its URL-conf and middleware."""
    settings.ROOT_URLCONF, settings.MIDDLEWARE = "engage.urls_tracking", tracking_middleware
    return settings


@pytest.mark.parametrize("urlconf", ["engage.urls_tracking", "engage.urls"])
def test_it_serves_opens_clicks_and_unsubscribes(client, settings, tokens, urlconf):
    settings.ROOT_URLCONF = urlconf
    response = client.get(f"/f/{tokens.click('https://example.com/a?b=1', 'Link')}")
    assert (response.status_code, response["Location"]) == (302, "https://example.com/a?b=1")
    assert client.get(f"/q/{tokens.open()}").status_code == 200
    assert client.get(f"/u/{tokens.open('unsubscribe')}").status_code == 200
    assert client.get("/q/not-a-token").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/templates", "/api/v1/transmissions", "/admin/", "/report/", "/", "/x"])
@pytest.mark.django_db  # /api/ middleware (statement timeout) may touch the connection first
@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_every_other_path_with_a_plain_404(client, settings, path, debug):
    settings.ROOT_URLCONF, settings.DEBUG = "engage.urls_tracking", debug
    response = client.get(path, HTTP_AUTHORIZATION="0" * 40)
    assert (response.status_code, response.content) == (404, b"Not Found\n")
    assert client.post(path, b"{}", content_type="application/json").status_code == 404


def test_an_unknown_serve_value_stops_the_process_naming_it():
    result = subprocess.run([PYTHON, "manage.py", "check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "ENGAGE_SERVE": "api"})  # fmt: skip
    assert result.returncode != 0
    assert "ENGAGE_SERVE='api' is not one of all, tracking" in result.stderr


@pytest.mark.slow
def test_a_tracking_process_runs_a_light_middleware_list_and_passes_its_checks(tracking_middleware):
    assert tracking_middleware == [
        "engage.urls_tracking.PlainErrorsMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    result = subprocess.run([PYTHON, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "ENGAGE_SERVE": "tracking"})  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_click_through_the_light_stack_sets_no_cookie_and_keeps_the_security_headers(client, tracking_stack, tokens):
    response = client.get(f"/f/{tokens.click('https://example.com/a', 'Link')}")
    assert (response.status_code, response["Location"], response["Content-Length"]) == (
        302,
        "https://example.com/a",
        "0",
    )
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers
    assert (response["X-Content-Type-Options"], response["Referrer-Policy"]) == ("nosniff", "same-origin")
    # The unsubscribe page holds a one-click form: never framed; its POST needs no CSRF token.
    page = client.get(f"/u/{tokens.open('unsubscribe')}")
    assert (page.status_code, page["X-Frame-Options"]) == (200, "DENY")
    assert client.post(f"/u/{tokens.open('unsubscribe')}", {"List-Unsubscribe": "One-Click"}).status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_a_500_on_a_tracking_path_is_plain_and_logged_with_its_traceback(
    client, tracking_stack, tokens, monkeypatch, caplog, debug
):
    import tracking.views

    def broken(**kwargs):
        raise RuntimeError("every store is down")

    monkeypatch.setattr(tracking.views, "engagement_record", broken)
    tracking_stack.DEBUG = debug
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get(f"/f/{tokens.click('https://example.com/a', 'Link')}")
    assert (response.status_code, response.content) == (500, b"Server Error\n")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info and record.exc_info[0] is RuntimeError


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_outside_allowed_hosts_is_a_plain_400(client, tracking_stack, debug):
    tracking_stack.DEBUG, tracking_stack.ALLOWED_HOSTS = debug, ["track.example.com"]
    response = client.get("/q/not-a-token", HTTP_HOST="evil.example")
    assert (response.status_code, response.content) == (400, b"Bad Request\n")
    assert client.get("/q/not-a-token", HTTP_HOST="track.example.com").content == b"Not Found\n"


def test_the_tracking_error_handlers_answer_plain_text(rf):
    from django.urls import get_resolver

    resolver = get_resolver("engage.urls_tracking")
    for status, body in ((400, b"Bad Request\n"), (404, b"Not Found\n"), (500, b"Server Error\n")):
        response = resolver.resolve_error_handler(status)(rf.get("/f/x"))
        assert (response.status_code, response.content, response["Content-Type"]) == (
            status, body, "text/plain; charset=utf-8"
        )  # fmt: skip


# --- the process as deployed ------------------------------------------------------------------


def procfile_track() -> str:
    for line in (ROOT / "scripts" / "Procfile").read_text().splitlines():
        if line.startswith("track:"):
            return line.partition(":")[2].strip()
    raise AssertionError("scripts/Procfile has no track line")


def _options(words: list[str]) -> dict[str, str | None]:
    """--flag value pairs (a flag followed by another flag, or last, maps to None)."""
    found: dict[str, str | None] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            following = words[index + 1] if index + 1 < len(words) else None
            found[word] = None if following is None or following.startswith("--") else following
    return found


def test_the_procfile_and_compose_run_the_pinned_server_with_the_same_options():
    words = shlex.split(procfile_track())
    assert words[:2] == ["ENGAGE_SERVE=tracking", "exec"] and words[2] == f".venv/bin/{SERVER}"
    assert words[-1] == "engage.wsgi:application"
    options = _options(words)
    assert options["--interface"] == "wsgi"
    assert (options["--port"], options["--workers"]) == ("$ENGAGE_TRACK_PORT", "$ENGAGE_WEB_WORKERS")

    track = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["track"]
    command = track["command"]
    assert command[0] == SERVER and command[-1] == "engage.wsgi:application"
    assert track["environment"]["ENGAGE_SERVE"] == "tracking"
    compose_options = _options(command)
    assert track["ports"] == [f"{compose_options['--port']}:{compose_options['--port']}"]
    assert compose_options["--host"] == "0.0.0.0"
    # Same server settings; only where it listens and how many workers differ.
    deployment = ("--host", "--port", "--workers")
    assert {k: v for k, v in options.items() if k not in deployment} == {
        k: v for k, v in compose_options.items() if k not in deployment
    }
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith(f"{SERVER}==")]
    assert pins == [f"{SERVER}=={version(SERVER)}"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def track_process(settings, stream, tmp_path):
    """scripts/Procfile's track line run as scripts/run runs it (``/bin/sh -c``), one worker,
    ENGAGE_DEBUG on (as scripts/run sets it), the bench route on, the session's keys (the
    tests' own are refused by the start-up checks); yields its port, process and log."""
    port = _free_port()
    env = {
        **os.environ,
        "ENGAGE_TRACK_PORT": str(port),
        "ENGAGE_WEB_WORKERS": "1",
        "ENGAGE_DEBUG": "true",
        "ENGAGE_BENCH_ROUTES": "true",
        "ENGAGE_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": settings.REDIS_URL,
        "ENGAGE_EVENT_STREAM": stream,
        "ENGAGE_TRACKING_KEYS": ",".join(settings.ENGAGE_TRACKING_KEYS),
        "ENGAGE_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("ENGAGE_SERVE", None)  # the line sets it
    log = tmp_path / "track.log"
    with log.open("w") as out:
        process = subprocess.Popen(["/bin/sh", "-c", procfile_track()], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield port, process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.mark.slow
def test_the_track_line_serves_clicks_alone_keeps_connections_in_step_and_stops_on_sigterm(track_process, stream):
    from tracking.events import events_redis
    from tracking.signing import tracking_signer

    port, process, log = track_process
    click = tracking_signer().for_message(issued_at=int(time.time()), **MESSAGE).click("https://example.com/a?b=1", "L")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    for method, path in (("HEAD", f"/f/{click}"), ("GET", f"/f/{click}"), ("GET", "/bench/redirect"),
                         ("GET", "/admin/"), ("GET", "/api/v1/templates")):  # fmt: skip
        conn.request(method, path)
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Location"), response.read()))
        assert response.getheader("Set-Cookie") is None
    first_socket = conn.sock
    assert answers == [
        (302, "https://example.com/a?b=1", b""),  # HEAD: no body, and the next answer is in step
        (302, "https://example.com/a?b=1", b""),
        (302, "https://example.com/landing?utm_source=bench", b""),  # the bench's bare redirect
        (404, None, b"Not Found\n"),
        (404, None, b"Not Found\n"),
    ]
    assert conn.sock is first_socket  # one kept-alive connection
    conn.close()
    with fails_if_hung(30):  # the process's hit log ships within 20 ms (tracking/hitlog.py)
        while not events_redis().xlen(stream):
            time.sleep(0.01)
    time.sleep(0.2)
    assert events_redis().xlen(stream) == 1  # the GET recorded a click, the HEAD nothing

    bad = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    bad.request("GET", "/q/not-a-token", headers={"Host": "evil.example"})
    response = bad.getresponse()
    assert (response.status, response.read()) == (400, b"Bad Request\n")  # ENGAGE_DEBUG is on
    bad.close()

    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(20) == 0, log.read_text()


@pytest.mark.slow
def test_the_tracking_process_waits_seconds_not_minutes_for_a_hung_postgresql():
    """PostgreSQL is the tracking process's fallback while Redis is down: a hung server must
    cost a hit a bounded time (an attacker saw 132 s), on a fresh connection each time."""
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "d = settings.DATABASES['default']; print(json.dumps([d['OPTIONS'], d['CONN_MAX_AGE']]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "engage.settings"}
    found = {}
    for serve in ("tracking", "all"):
        result = subprocess.run([sys.executable, "-c", script], env={**env, "ENGAGE_SERVE": serve},
                                cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        found[serve] = json.loads(result.stdout.strip().splitlines()[-1])
    options, max_age = found["tracking"]
    assert int(options["connect_timeout"]) <= 5 and "statement_timeout" in options["options"]
    assert max_age == 0
    assert "connect_timeout" not in found["all"][0]
