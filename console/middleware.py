"""``ErrorPagesMiddleware``: no view's exception is ever answered with Django's debug page.

With ``DEBUG`` on (``scripts/run`` sets it), Django answers an exception a view raised with its
technical pages (the traceback, local variables, settings, every route), bypassing the
``handler404``/``handler500`` views. This middleware's ``process_exception`` comes first:

- ``Http404`` (the admin's unknown pages, a sink message that is gone): the console's 404 page,
  or SparkPost's JSON 404 on ``/api/`` (``console.views.errors.not_found``);
- a bad request (``SuspiciousOperation``, ``BadRequest``: Django's 400s): a plain 400 page;
- any other exception (``PermissionDenied`` excepted: Django's 403 is no debug page): logged
  with its traceback as Django logs a 500 (``django.request``), and answered with the console's
  500 page, or the API's JSON 500 envelope on ``/api/`` (``console.views.errors.server_error``).

CSRF failures have their own view (``CSRF_FAILURE_VIEW``: ``console.views.errors.csrf_failure``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.log import log_response

from console.views.errors import bad_request, not_found, server_error


class ErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return None
        if isinstance(exception, SuspiciousOperation | BadRequest):
            response = bad_request(request, exception)
            log_response("Bad Request: %s", request.path, response=response, request=request, exception=exception)
            return response
        response = server_error(request)
        log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exception)
        return response
