"""Request handling shared by every path, before URL resolution.

``ApiPathMiddleware`` (Django middleware, ``/api/`` paths):

- ``/x`` and ``/x/`` are the same resource and neither redirects (SPEC A.1): the trailing
  slash is removed from ``path_info`` so each route is declared once, without it.
- A body whose declared length is over the limit is refused with 413 before it is read.
- The API authenticates every request by its key, never by a cookie, so CSRF (a browser
  replaying a session cookie) does not apply: ``/api/`` is exempt, including unknown paths,
  which answer the 404 envelope for every method. The admin and the report keep CSRF.

``HttpFramingMiddleware`` (WSGI, wraps the whole application in ``engage/wsgi.py``, so it
holds for every server and every path: API, tracking links, report, admin, static files):

- A response to HEAD carries no body (RFC 9110 §9.3.2); its headers, Content-Length
  included, are the ones GET would get. Gunicorn sends whatever body the application
  returns, so a body here would be read as the start of the next response on a kept-alive
  connection.
- A request body sent with ``Transfer-Encoding: chunked`` and no Content-Length is read when
  the server de-chunks it and marks the input terminated (``wsgi.input_terminated``:
  gunicorn does), and handed to Django with its length; otherwise (Django's runserver) it is
  refused with 411 Length Required (RFC 9110 §15.5.12) in the error envelope. Django reads
  ``CONTENT_LENGTH`` bytes of input, so without this a chunked body would be read as empty.
  Past ``ENGAGE_MAX_REQUEST_BYTES`` it is 413.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from engage import errors
from engage.api.handler import envelope, error_response
from engage.api.paths import is_api_path


class ApiPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path_info):
            # read by CsrfViewMiddleware: key auth, no cookies (a Django flag the stubs do not declare)
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
            if len(request.path_info) > 1 and request.path_info.endswith("/"):
                request.path_info = request.path_info.rstrip("/") or "/"
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            limit = settings.ENGAGE_MAX_REQUEST_BYTES
            if length > limit:
                return error_response(errors.RequestTooLarge(f"The request body is larger than {limit} bytes"))
        return self.get_response(request)


def _is_chunked(environ: dict) -> bool:
    codings = environ.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in codings.lower() and not environ.get("CONTENT_LENGTH")


class HttpFramingMiddleware:
    """WSGI middleware: HEAD answers without a body; chunked request bodies read or refused (411)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if _is_chunked(environ):
            refusal = self._read_chunked(environ)
            if refusal is not None:
                return self._refuse(refusal, environ, start_response)
        result = self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "HEAD":
            close = getattr(result, "close", None)
            if close is not None:
                close()  # ends the request as usual (request_finished, files closed)
            return []
        return result

    @staticmethod
    def _read_chunked(environ: dict) -> errors.EngageError | None:
        if not environ.get("wsgi.input_terminated"):
            return errors.LengthRequired(
                "This server cannot read a chunked request body; send it with a Content-Length header"
            )
        limit = settings.ENGAGE_MAX_REQUEST_BYTES
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return errors.RequestTooLarge(f"The request body is larger than {limit} bytes")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        del environ["HTTP_TRANSFER_ENCODING"]
        return None

    @staticmethod
    def _refuse(error: errors.EngageError, environ: dict, start_response: Callable) -> list[bytes]:
        body = json.dumps(envelope(error)).encode()
        reason = {411: "Length Required", 413: "Request Entity Too Large"}.get(error.status, "")
        start_response(
            f"{error.status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
