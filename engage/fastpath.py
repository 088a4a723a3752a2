"""The click and open fast path: ``/f/`` and ``/q/`` answered without Django's request cycle.

A tracking hit is the one request Engage serves at the rate recipients click, and its view
(verify the token, one Redis write, answer) is small next to the machinery around it. With the
tracking process's four middleware, Django's handler (URL resolver, ``request_started``, the
middleware chain) cost more than the view itself: measured in-process on this machine, a bare
``HttpResponseRedirect`` served by Django took 170-190 µs, the click view alone 60-100 µs,
and ``bench/click_redirect.py`` (granian, 2 workers, 8 connections) gave the click 54-56 % of
the bare redirect's rate (issue 11's target is 80 %).

:class:`TrackingFastPath` (WSGI, wrapped around Django's handler in ``engage/wsgi.py``) gives a
``GET``/``HEAD`` of ``/f/<token>``, ``/f/<sublink>/<token>`` or ``/q/<token>`` straight to the
**same views** (``tracking.views.click_redirect`` and ``open_pixel``) and then runs the same
response middleware Django would (``SecurityMiddleware``, ``CommonMiddleware``,
``XFrameOptionsMiddleware``: their ``process_response``, from Django, not copied), so the answer
is byte-for-byte Django's (``tests/tracking/test_fastpath.py`` runs every tracking view test
both ways). What it skips is the work that changes nothing for these URLs: URL resolution and the
middleware chain's wrappers.

Everything else goes to Django unchanged: other paths and methods (``/u/``, ``POST``), a Host
outside ``ALLOWED_HOSTS`` (Django answers its 400), a NUL in the query (its 404), and every
request when a setting would make Django's middleware do more than add headers
(``SECURE_SSL_REDIRECT``, ``DISALLOWED_USER_AGENTS``, ``PREPEND_WWW``). A view that raises is
logged and answered with the plain 500, as ``PlainErrorsMiddleware`` does.

The end of a hit: Django sends ``request_finished`` when the server closes the response, and
its own three receivers have one thing to do after a hit (which touches no cache and sets no
URL-conf): ``close_old_connections``, for the database connection a hit opens when its events
fall back to the outbox. While those three are the only receivers, the fast path answers with
a body whose ``close()`` runs that one alone: an ``HttpResponse(302)`` made and closed cost
47-60 µs of CPU with the signal against 17-21 µs this way (``process_time``, 7 × 20,000, load
9; the click cost +23 µs over the bare redirect, bench/RESULTS.md). Any other receiver
connected means the signal is sent as Django sends it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.conf import settings
from django.core.cache import close_caches
from django.core.exceptions import DisallowedHost
from django.core.handlers.base import reset_urlconf
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.log import log_response

from engage.urls_tracking import server_error
from tracking import views
from tracking.urls import CLICK_PATH, OPEN_PATH

# The routes of tracking/urls.py, from their own patterns (a test checks both resolve alike).
_CLICK = re.compile(f"/{CLICK_PATH}")
_OPEN = re.compile(f"/{OPEN_PATH}")
_NUL_IN_QUERY = re.compile(r"%00|\x00")


def _no_response(request: HttpRequest) -> HttpResponse:  # the middleware's get_response, never called
    raise AssertionError("the fast path calls the middleware's process_response only")


#: ``request_finished``'s receivers that Django itself connects (django/db, django/core/cache,
#: django/core/handlers/base): after a hit, only the first has something to do.
_DJANGO_FINISHERS = (close_old_connections, close_caches, reset_urlconf)


class _Answer(list[bytes]):
    """A hit's body, whose ``close()`` (called by the server) ends the hit as Django's own
    ``request_finished`` receivers would (module docstring)."""

    def close(self) -> None:
        close_old_connections()


def _only_djangos_finishers() -> bool:
    receivers = [ref() for _key, ref, _is_async in request_finished.receivers]
    return len(receivers) == len(_DJANGO_FINISHERS) and all(
        any(receiver is finisher for finisher in _DJANGO_FINISHERS) for receiver in receivers
    )


class TrackingFastPath:
    """WSGI middleware: clicks and opens served by their views without Django's request
    cycle (module docstring); every other request goes to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        # Response middleware in the order Django applies it (innermost first), built from
        # the settings as Django builds them: once, when the application is made.
        self._response_middleware = [
            middleware(_no_response)
            for middleware in (XFrameOptionsMiddleware, CommonMiddleware, SecurityMiddleware)
            if f"{middleware.__module__}.{middleware.__name__}" in settings.MIDDLEWARE
        ]
        self.enabled = not (settings.SECURE_SSL_REDIRECT or settings.DISALLOWED_USER_AGENTS or settings.PREPEND_WWW)
        # request_finished's receivers, kept when they are Django's own alone: while they have
        # not changed, a hit ends with close_old_connections only (module docstring).
        self._finish_receivers = list(request_finished.receivers) if _only_djangos_finishers() else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not self.enabled or environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or path[:3] not in ("/f/", "/q/"):
            return self.app(environ, start_response)
        match = (_CLICK if path[1] == "f" else _OPEN).fullmatch(path)
        if match is None or "\x00" in path or _NUL_IN_QUERY.search(environ.get("QUERY_STRING", "")):
            return self.app(environ, start_response)
        request = WSGIRequest(environ)
        try:
            request.get_host()
        except DisallowedHost:
            return self.app(environ, start_response)
        view = views.click_redirect if path[1] == "f" else views.open_pixel
        try:
            response = view(request, match.group("token"))
        except Exception as exc:
            response = server_error(request)
            log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exc)
        for middleware in self._response_middleware:
            response = cast(HttpResponse, middleware.process_response(request, response))  # these return it
        # As django.core.handlers.wsgi.WSGIHandler answers (these views set no cookie).
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        if not response.streaming and request_finished.receivers == self._finish_receivers:  # as when made
            return _Answer([response.content])
        response._handler_class = type(self)  # type: ignore[attr-defined]  # request_finished's sender, sent by close()
        return response
