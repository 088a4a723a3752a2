"""API requests run their database statements under ``ENGAGE_API_STATEMENT_TIMEOUT_MS``.

``ApiStatementTimeoutMiddleware`` (``/api/`` paths only) sets PostgreSQL's
``statement_timeout`` on the request's connection before the view runs and resets it after,
so a connection kept open for reuse (``CONN_MAX_AGE``) never carries it into the next use
(tracking endpoints share these processes). Workers and beat never pass through here: their
long ``COPY``/bulk statements run without it. A statement cancelled by the timeout answers
503 / 1502 saying so (``errors.QueryTimeout``, from ``engage.api.handler.query_timeout_error``),
never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

from engage.api.handler import error_response, is_query_canceled, query_timeout_error

log = logging.getLogger(__name__)


class ApiStatementTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/api/"):
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
        """Views outside DRF: a cancelled statement still answers the envelope, not a 500."""
        if request.path_info.startswith("/api/") and is_query_canceled(exception):
            return error_response(query_timeout_error())
        return None
