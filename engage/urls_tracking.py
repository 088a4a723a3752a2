"""Routes of a tracking web process (``ENGAGE_SERVE=tracking``): the open pixel, click and
List-Unsubscribe endpoints of ``tracking/urls.py`` and nothing else; any other path (API,
admin, report) is the same small plain 404 as a bad token. The API process
(``engage/urls.py``) serves the tracking routes too, for links sent while it was their host.

No answer of a tracking process is a Django debug page, ``ENGAGE_DEBUG`` or not (``scripts/run``
sets it): errors are small plain-text bodies (``handler400``/``handler404``/``handler500`` and
:class:`PlainErrorsMiddleware`, the outermost of the tracking process's ``MIDDLEWARE``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.utils.log import log_response

from tracking.views import not_found as plain_not_found


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return plain_not_found()


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponse(b"Bad Request\n", status=400, content_type="text/plain; charset=utf-8")


def server_error(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"Server Error\n", status=500, content_type="text/plain; charset=utf-8")


class PlainErrorsMiddleware:
    """A Host outside ``ALLOWED_HOSTS`` is a plain 400, and an exception raised by a view is
    logged with its traceback (``django.request``, as Django logs a 500) and answered with the
    plain 500, even under DEBUG, where Django would render its debug page (settings, request
    headers) instead of ``handler500``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost as exc:
            logging.getLogger("django.security.DisallowedHost").warning("%s", exc)
            return bad_request(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        response = server_error(request)
        log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exception)
        return response


# The catch-all answers even under ENGAGE_DEBUG (where Django would show its 404 page).
urlpatterns = [path("", include("tracking.urls")), re_path(r"", not_found)]

handler400 = "engage.urls_tracking.bad_request"
handler404 = "engage.urls_tracking.not_found"
handler500 = "engage.urls_tracking.server_error"
