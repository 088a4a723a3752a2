"""API requests, and the console's pages that search what landed, run their database
statements under ``ENGAGE_API_STATEMENT_TIMEOUT_MS``.

``ApiStatementTimeoutMiddleware`` (``/api/`` paths and :data:`TIMED_PAGES`) sets PostgreSQL's
``statement_timeout`` on the request's connection before the view runs and resets it after,
so a connection kept open for reuse (``CONN_MAX_AGE``) never carries it into the next use
(tracking endpoints share these processes). Workers and beat never pass through here: their
long ``COPY``/bulk statements run without it. A statement cancelled by the timeout answers
503 / 1502 saying so (``errors.QueryTimeout``, from ``engage.api.handler.query_timeout_error``),
never a 500; on a console page, a plain 503 page saying to narrow the search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from engage.api.handler import error_response, query_timeout_error
from engage.api.paths import is_api_path
from engage.errors import is_query_canceled

log = logging.getLogger(__name__)

#: The console's pages whose queries a person's filters can make as large as the API's
#: (found by an attacker: /messages/ with any window ran without the API's timeout).
TIMED_PAGES = ("/", "/messages/", "/transmissions/", "/report/")


def _timed(path: str) -> bool:
    return is_api_path(path) or path == "/" or path.startswith(TIMED_PAGES[1:])


_TIMEOUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too long · Engage</title></head>
<body style="font:15px/1.45 system-ui,sans-serif;margin:2rem"><h1>This search took too long</h1>
<p>It ran over {ms} ms (ENGAGE_API_STATEMENT_TIMEOUT_MS) and was stopped. Narrow it: a shorter
window, or a recipient, campaign or transmission.</p><p><a href="/">Go to the overview</a></p></body></html>
"""


class ApiStatementTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _timed(request.path_info):
            return self.get_response(request)
        timeout = settings.ENGAGE_API_STATEMENT_TIMEOUT_MS
        try:
            # On the driver's connection: bookkeeping, not the request's queries (query counts).
            connection.ensure_connection()
            connection.connection.execute("SELECT set_config('statement_timeout', %s, false)", [f"{timeout}ms"])
        except Exception:  # noqa: BLE001 - the view's own queries report any database problem
            # The database is unreachable (or not allowed here): the view's own queries report it as they always do.
            log.warning("could not set the API statement timeout", exc_info=True)
        try:
            return self.get_response(request)
        finally:
            self._reset()

    @staticmethod
    def _reset() -> None:
        if connection.connection is None:
            return
        try:
            connection.connection.execute("RESET statement_timeout")
        except (DatabaseError, psycopg.Error):
            # A broken connection: dropping it is the only way to be sure the next user of it
            # does not inherit the timeout. Inside a transaction its owner ends it (tests).
            if not connection.in_atomic_block:
                connection.close()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Views outside DRF: a cancelled statement still answers the envelope (a plain page on
        the console), not a 500."""
        if not (_timed(request.path_info) and is_query_canceled(exception)):
            return None
        if is_api_path(request.path_info):
            return error_response(query_timeout_error())
        page = _TIMEOUT_PAGE.format(ms=settings.ENGAGE_API_STATEMENT_TIMEOUT_MS)
        return HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
