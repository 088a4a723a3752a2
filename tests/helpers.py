"""Assertion helpers for the SparkPost wire format, and a guard that fails a hung block."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

#: Tables Django's flush leaves alone (unmanaged models: the partitioned event table), which a
#: transactional test must still find empty: emptied after each such test (tests/conftest.py)
#: and when an end-to-end module's worker stops (tests/e2e/conftest.py).
UNFLUSHED_TABLES = ("tracking_event",)


def database_url(settings_dict: dict) -> str:
    """A ``DATABASE_URL`` for Django's connection settings ``settings_dict`` (the test
    database), for a process a test starts (gunicorn, ``manage.py smtp_listen``)."""
    user, password = quote(settings_dict.get("USER") or ""), quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{auth}/{settings_dict['NAME']}?host={quote(host)}"
    return f"postgresql://{auth}{host}:{settings_dict.get('PORT') or 5432}/{settings_dict['NAME']}"


def assert_error(response, status: int, code: str) -> dict:
    """The response is the SparkPost error envelope with this status and string code; returns the error."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert set(body) >= {"errors"}, body
    assert isinstance(body["errors"], list) and body["errors"], body
    error = body["errors"][0]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["description"], str)
    return error


def assert_documented(client, response, path: str, method: str) -> None:
    """The response's status is one the served OpenAPI document lists for ``method path`` and
    its JSON body matches the schema documented for that status (as schemathesis checks)."""
    import jsonschema

    document = client.get("/api/v1/openapi.json").json()
    answers = document["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in answers, (response.status_code, sorted(answers))
    schema = answers[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(response.json())


#: tracking_domain values an attacker sent (issue 10): each must be refused wherever it is used.
TRACKING_DOMAIN_ATTACKS = [
    'x" onmouseover="alert(1)',
    "a.test>, <mailto:attacker@evil.test?",
    "javascript://x.test/%0aalert(document.domain)//",
    "evil.test/\r\nX-Evil: 1",
]


@contextmanager
def fails_if_hung(seconds: float = 30) -> Iterator[None]:
    """Fail the block if it has not ended after ``seconds``: a bound that only catches a hang
    (the behaviour under test is asserted on its outcome), never a measure of speed, which
    bench/ owns. Main thread only (SIGALRM); it interrupts a blocked socket call."""

    def hung(signum, frame):
        raise AssertionError(f"still running after {seconds} s: hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class HungServer:
    """A TCP server on a free loopback port that accepts every connection, reads nothing and
    answers nothing, until :meth:`close` (which ends every connection it holds): a Redis that
    hangs. ``url``: a ``redis://`` URL for it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                self.connections.append(self.server.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.server.close()
        for connection in self.connections:
            connection.close()


def kept_bytes(build) -> int:
    """Bytes still allocated (tracemalloc) after ``build()`` ran, garbage collected before and
    after: what a cache or a leak keeps of the work."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    build()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return kept
