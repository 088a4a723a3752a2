"""Webhooks cannot reach internal hosts (issue 10, item 5): through the API and the delivery
service, against real servers on loopback. Every refused target points at a live local
server, so a refusal that failed would show up as a request that server received."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analytics import webhooks
from analytics.models import Webhook, WebhookBatch
from tests.analytics import data
from tests.helpers import assert_error, fails_if_hung

REAL_GETADDRINFO = socket.getaddrinfo


class Sink:
    """An HTTP server on ``host``: records every request; answers per path from
    ``answers`` (status, headers, body, reason), else 200 "OK"."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, dict[str, str], bytes, str | None]] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.requests.append({"path": self.path, "headers": self.headers, "body": body})
                status, headers, payload, reason = sink.answers.get(self.path, (200, {}, b"OK", None))
                self.send_response(status, reason)
                for name, value in {"Content-Type": "text/plain", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        server_class = ThreadingHTTPServer
        if ":" in host:
            server_class = type("V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        self.server = server_class((host, port), Handler)
        self.port = self.server.server_address[1]
        literal = f"[{host}]" if ":" in host else host
        self.url = f"http://{literal}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is handed to ``behaviour``."""

    def __init__(self, behaviour) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()

        def serve():
            while not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.connections += 1
                threading.Thread(target=self._run, args=(behaviour, conn), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def _run(self, behaviour, conn):
        with contextlib.suppress(OSError), conn:
            behaviour(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def sink():
    server = Sink()
    yield server
    server.close()


@pytest.fixture
def resolver(monkeypatch):
    """Names in ``resolver.names`` resolve to the listed addresses (or to the next list of
    a list of lists, one per lookup); every other name as usual. ``resolver.asked`` counts."""

    class Resolver:
        names: dict[str, list] = {}
        asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in Resolver.names:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        Resolver.asked.append(host)
        answers = Resolver.names[host]
        if answers and isinstance(answers[0], list):
            answers = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    Resolver.names, Resolver.asked = {}, []
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return Resolver


def _create(api, target, **fields):
    return api.post(
        "/api/v1/webhooks", {"name": "Hook", "target": target, "events": ["delivery"], **fields}, format="json"
    )


def _refusal(response) -> str:
    error = assert_error(response, 400, "1200")
    assert "webhooks may not reach internal hosts" in error["description"]
    return error["description"]


SPELLINGS = [
    "http://127.0.0.1:{port}/admin",
    "http://2130706433:{port}/admin",
    "http://0x7f.1:{port}/admin",
    "http://0x7f000001:{port}/admin",
    "http://0177.0.0.1:{port}/admin",
    "http://127.1:{port}/admin",
    "http://[::ffff:127.0.0.1]:{port}/admin",
    "http://0.0.0.0:{port}/admin",
    "http://localhost:{port}/admin",
    "https://127.0.0.1:{port}/admin",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_loopback_targets_are_refused_at_create_in_every_spelling_and_never_contacted(api, sink, spelling):
    description = _refusal(_create(api, spelling.format(port=sink.port)))
    assert "loopback" in description or "unspecified" in description
    assert sink.requests == [] and Webhook.objects.count() == 0


def test_ipv6_loopback_is_refused_and_never_contacted(api):
    try:
        sink6 = Sink("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert "'::1' is a loopback address" in _refusal(_create(api, f"http://[::1]:{sink6.port}/admin"))
        assert sink6.requests == [] and Webhook.objects.count() == 0
    finally:
        sink6.close()


def test_update_to_an_internal_target_is_refused_and_changes_nothing(api, sink, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{sink.port}"]
    hook_id = _create(api, sink.url + "/hook").json()["results"]["id"]
    other = Sink()
    try:
        _refusal(api.put(f"/api/v1/webhooks/{hook_id}", {"target": f"http://0x7f.1:{other.port}/"}, format="json"))
        assert other.requests == []
    finally:
        other.close()
    assert Webhook.objects.get().target == sink.url + "/hook"


def test_a_name_that_resolves_to_loopback_is_refused_and_never_contacted(api, sink, resolver):
    resolver.names["hooks.example.com"] = ["127.0.0.1"]
    description = _refusal(_create(api, f"http://hooks.example.com:{sink.port}/in"))
    assert "'hooks.example.com' resolves to a loopback address" in description and "127.0.0.1" not in description
    assert sink.requests == [] and resolver.asked == ["hooks.example.com"]


def test_an_oauth2_token_url_on_an_internal_host_is_refused(api, sink, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{sink.port}"]
    token = Sink()
    try:
        details = {"url": f"http://2130706433:{token.port}/token", "body": {"client_id": "x"}}
        response = _create(api, sink.url + "/hook", auth_type="oauth2", auth_request_details=details)
        error = assert_error(response, 400, "1200")
        assert "POST to webhook tokens URL failed" in error["description"] and "loopback" in error["description"]
        assert token.requests == [] and sink.requests == []
    finally:
        token.close()


def test_the_allow_list_lets_the_local_receiver_through(api, sink, settings):
    _refusal(_create(api, sink.url + "/hook"))
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    assert _create(api, sink.url + "/hook").status_code == 200
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{sink.port}"]
    assert _create(api, sink.url + "/hook").status_code == 200
    assert sink.paths() == ["/hook", "/hook"]
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{sink.port + 1}"]
    _refusal(_create(api, sink.url + "/hook"))
    assert len(sink.requests) == 2


def _two_sinks_on_one_port() -> tuple[Sink, Sink]:
    """A sink on 127.0.0.2 (standing in for a public address) and one on 127.0.0.1 (an
    internal one), on the same port."""
    for _ in range(20):
        good = Sink("127.0.0.2")
        try:
            return good, Sink("127.0.0.1", good.port)
        except OSError:
            good.close()
    pytest.skip("no free port on both 127.0.0.1 and 127.0.0.2")


def _deliver_one_batch(hook_id: str) -> WebhookBatch:
    data.land(data.generate(seed=5, messages=2), batch=100)
    webhooks.webhook_batches_build(force=True)
    ((batch_id, lease),) = [
        (b, lease)
        for b, lease in webhooks.webhook_batches_lease_due()
        if str(WebhookBatch.objects.get(pk=b).webhook_id) == hook_id
    ]
    webhooks.webhook_batch_deliver(batch_id=batch_id, lease=lease)
    return WebhookBatch.objects.get(pk=batch_id)


def test_dns_rebinding_never_reaches_the_internal_address(api, resolver, settings):
    """The name answers the allowed address once, then the internal one: the test POST
    goes to the address that was checked (one lookup), and a delivery after the name moved
    to the internal address is refused before any connection."""
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.2/32"]
    good, internal = _two_sinks_on_one_port()
    try:
        resolver.names["rebind.example.com"] = [["127.0.0.2"], ["127.0.0.1"]]
        response = _create(api, f"http://rebind.example.com:{good.port}/hook")
        assert response.status_code == 200, response.content
        assert good.paths() == ["/hook"] and internal.requests == []
        assert good.requests[0]["headers"]["Host"] == f"rebind.example.com:{good.port}"
        assert resolver.asked == ["rebind.example.com"]

        batch = _deliver_one_batch(response.json()["results"]["id"])
        assert internal.requests == [] and good.paths() == ["/hook"]
        assert batch.state == "pending" and batch.response_code == "" and batch.attempts == 1
        assert batch.failure.startswith("refused: 'rebind.example.com' resolves to a loopback address")
        assert resolver.asked == ["rebind.example.com"] * 2
    finally:
        good.close()
        internal.close()


def test_redirects_are_failures_with_their_status_and_are_not_followed(api, sink, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    sink.answers["/moved"] = (302, {"Location": sink.url + "/landing"}, b"", None)
    error = assert_error(_create(api, sink.url + "/moved"), 400, "1200")
    assert "HTTP 302 Found" in error["description"]
    hook_id = _create(api, sink.url + "/hook").json()["results"]["id"]
    sink.answers["/hook"] = (307, {"Location": sink.url + "/landing"}, b"", None)
    batch = _deliver_one_batch(hook_id)
    assert (batch.response_code, batch.failure, batch.state) == ("307", "HTTP 307 Temporary Redirect", "pending")
    assert "/landing" not in sink.paths()


def test_validate_reports_status_and_reason_only_never_the_targets_headers_or_body(api, sink, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{sink.port}"]
    hook_id = _create(api, sink.url + "/hook").json()["results"]["id"]
    secret = {"X-Internal-Token": "hunter2-header"}
    for status, reason, msg in ((200, "OK", "succeeded"), (500, "Internal Server Error", "failed")):
        sink.answers["/hook"] = (status, secret, b'{"password": "hunter2-body"}', "hunter2-reason")
        response = api.post(f"/api/v1/webhooks/{hook_id}/validate", {"message": {"msys": {}}}, format="json")
        assert response.status_code == 200
        assert response.json()["results"] == {
            "msg": f"Test POST to endpoint {msg}",
            "response": {"status": status, "reason": reason},
        }
        assert b"hunter2" not in response.content
    assert json.loads(sink.requests[-1]["body"]) == {"msys": {}}


def test_validate_of_a_target_that_now_resolves_internally_is_refused(api, sink, resolver, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.2/32"]
    good, internal = _two_sinks_on_one_port()
    try:
        resolver.names["moving.example.com"] = [["127.0.0.2"], ["127.0.0.1"]]
        hook_id = _create(api, f"http://moving.example.com:{good.port}/hook").json()["results"]["id"]
        _refusal(api.post(f"/api/v1/webhooks/{hook_id}/validate", {"message": {"msys": {}}}, format="json"))
        assert internal.requests == [] and len(good.requests) == 1
    finally:
        good.close()
        internal.close()


def _silent(conn, stop):
    stop.wait(30)


def _not_http(conn, stop):
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def _dribble(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(100):  # a header line every 0.2 s: each read is quick, the answer never ends
        if stop.wait(0.2):
            return
        conn.sendall(b"X-Slow: 1\r\n")


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_failed_creates_do_not_tell_a_closed_port_from_an_open_one(api, settings):
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    settings.ENGAGE_WEBHOOK_TIMEOUT = 1
    servers = [RawServer(_not_http), RawServer(_silent), RawServer(lambda conn, stop: None)]
    try:
        ports = [_closed_port()] + [s.port for s in servers]
        descriptions = {
            assert_error(_create(api, f"http://127.0.0.1:{port}/"), 400, "1200")["description"] for port in ports
        }
        assert descriptions == {"Test POST to endpoint failed (no HTTP response); the webhook was not saved"}
        assert all(s.connections == 1 for s in servers)
    finally:
        for s in servers:
            s.close()
    assert Webhook.objects.count() == 0


@pytest.mark.parametrize("behaviour", [_silent, _dribble])
def test_the_create_test_post_gives_up_after_its_short_timeout(api, settings, monkeypatch, behaviour):
    """The create's test POST waits TEST_TIMEOUT_SECONDS, not the deliveries' (far longer here,
    and the silent or dribbling target outlasts it): a create that waited for the latter would
    outrun the hang guard."""
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    settings.ENGAGE_WEBHOOK_TIMEOUT = 300  # its maximum: deliveries may wait longer than a create does
    monkeypatch.setattr(webhooks, "TEST_TIMEOUT_SECONDS", 1.0)
    server = RawServer(behaviour)
    try:
        with fails_if_hung(15):
            error = assert_error(_create(api, f"http://127.0.0.1:{server.port}/"), 400, "1200")
        assert "no HTTP response" in error["description"]
    finally:
        server.close()


def test_a_delivery_attempt_ends_at_its_timeout_even_when_the_target_keeps_talking(settings):
    """The dribbling target talks for 20 s, each read quick: an attempt that timed each read
    alone, not the whole attempt, would last as long and outrun the hang guard."""
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.0/8"]
    settings.ENGAGE_WEBHOOK_TIMEOUT = 1
    server = RawServer(_dribble)
    try:
        with fails_if_hung(10):
            answer = webhooks.http_post(f"http://127.0.0.1:{server.port}/", b"[]", {})
        assert (answer.status, answer.failure) == (None, "no HTTP response")
    finally:
        server.close()


@pytest.fixture
def tls_sink(tmp_path, monkeypatch):
    """A Sink over TLS with a self-signed certificate for hooks.example.test, trusted by
    this process (SSL_CERT_FILE); ``tls_sink.sni`` lists the server names clients sent."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=hooks.example.test", "-addext", "subjectAltName=DNS:hooks.example.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = Sink()
    server.sni = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server.sni.append(name)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    yield server
    server.close()


def test_https_targets_connect_to_the_checked_address_with_sni_and_certificate_of_the_name(
    api, tls_sink, resolver, settings
):
    resolver.names["hooks.example.test"] = ["127.0.0.1"]
    resolver.names["other.example.test"] = ["127.0.0.1"]
    settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS = [
        f"hooks.example.test:{tls_sink.port}",
        f"other.example.test:{tls_sink.port}",
    ]
    response = _create(api, f"https://hooks.example.test:{tls_sink.port}/hook")
    assert response.status_code == 200, response.content
    assert tls_sink.paths() == ["/hook"] and tls_sink.sni == ["hooks.example.test"]
    assert tls_sink.requests[0]["headers"]["Host"] == f"hooks.example.test:{tls_sink.port}"
    # Same address, a name the certificate does not name: the handshake fails, nothing is posted.
    error = assert_error(_create(api, f"https://other.example.test:{tls_sink.port}/hook"), 400, "1200")
    assert "no HTTP response" in error["description"]
    assert tls_sink.paths() == ["/hook"] and tls_sink.sni == ["hooks.example.test", "other.example.test"]
