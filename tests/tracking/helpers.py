"""Constants shared by the tracking tests: their Redis database, known tracking keys, and one
message whose tokens they sign; and a client for the WSGI stack a tracking process runs."""

from __future__ import annotations

TEST_REDIS_DB = 9
OLD_KEY = "1:old-tracking-secret-0123456789"
NEW_KEY = "2:new-tracking-secret-0123456789"


MESSAGE = {
    "message_id": "0000632c8b54d53f0a00",
    "transmission_id": "11898458545848322",
    "rcpt_to": "jo@example.com",
    "campaign_id": "spring-sale",
    "template_id": "tpl-1",
    "template_version": 3,
    "transactional": False,
    "rcpt_meta": {"customKey": "customValue", "n": 1},
    "rcpt_tags": ["male", "US"],
}


class WsgiClient:
    """Requests through the WSGI stack a tracking process runs (``engage/wsgi.py``: HTTP
    framing, then the click/open fast path, then Django's handler with the tracking process's
    routes and middleware, set by the ``client`` fixture), with the test client's call style
    (``get``/``head``/``post`` with ``REMOTE_ADDR=...`` and such) and an ``HttpResponse`` back."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import RequestFactory

        from engage.api.middleware import HttpFramingMiddleware
        from engage.fastpath import TrackingFastPath

        self.django = WSGIHandler()
        self.fastpath = TrackingFastPath(self.django)
        self.app = HttpFramingMiddleware(self.fastpath)
        self.factory = RequestFactory()

    def request(self, method: str, path: str, *args, **extra):
        from django.core.signals import request_finished, request_started
        from django.db import close_old_connections
        from django.http import HttpResponse

        environ = getattr(self.factory, method)(path, *args, **extra).environ
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer.update(status=int(status.split()[0]), headers=headers)

        # As Django's test client does: the test's database connection outlives the request.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        response = HttpResponse(body, status=answer["status"])
        for name in list(response.headers):
            del response.headers[name]
        for name, value in answer["headers"]:
            response.headers[name] = value
        return response

    def __getattr__(self, method: str):
        if method not in ("get", "head", "post", "put", "patch", "delete", "options"):
            raise AttributeError(method)
        return lambda path, *args, **extra: self.request(method, path, *args, **extra)


def closed_port() -> int:
    """A loopback port nothing listens on (as a Redis that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
