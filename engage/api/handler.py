"""The one renderer of API failures: every error leaves as ``{"errors": [...]}`` (SPEC A.1)."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from engage import errors
from engage.errors import is_deadlock, is_query_canceled

log = logging.getLogger(__name__)
_Answer = TypeVar("_Answer", bound=HttpResponse)


def query_timeout_error() -> errors.QueryTimeout:
    """The 503 / 1502 for an API statement cancelled by ``ENGAGE_API_STATEMENT_TIMEOUT_MS`` (set by
    ``engage.api.statement_timeout.ApiStatementTimeoutMiddleware``), naming the limit in ms."""
    limit = settings.ENGAGE_API_STATEMENT_TIMEOUT_MS
    return errors.QueryTimeout(
        f"A database query took longer than the {limit} ms allowed for an API request "
        "(ENGAGE_API_STATEMENT_TIMEOUT_MS) and was cancelled; narrow the request and retry"
    )


def _first_validation_message(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_validation_message(value, f"{prefix}{key}: " if key != "non_field_errors" else prefix)
    if isinstance(detail, list) and detail:
        return _first_validation_message(detail[0], prefix)
    return f"{prefix}{detail}"


def as_engage_error(exc: Exception) -> errors.EngageError:
    """Translate what Django, DRF or our own code raised into one EngageError."""
    if isinstance(exc, errors.EngageError):
        return exc
    if isinstance(exc, drf.ParseError):
        return errors.InvalidJson(str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        media = re.search(r'"(.*)"', str(exc.detail))
        given = f"'{media.group(1)}'" if media else "of this request"
        return errors.UnsupportedMediaType(f"The Content-Type {given} is not supported; send application/json")
    if isinstance(exc, drf.MethodNotAllowed):
        return errors.MethodNotAllowed(str(exc.detail))
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return errors.Unauthorized()
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return errors.PermissionDenied()
    if isinstance(exc, (drf.NotFound, Http404)):
        return errors.NotFound(str(exc) or "Resource not found")
    if isinstance(exc, drf.NotAcceptable):
        return errors.NotAcceptable(str(exc.detail))
    if isinstance(exc, drf.Throttled):
        # djangorestframework-stubs omits Throttled.wait, which DRF's __init__ sets (float | None)
        wait = f"; retry in {int(exc.wait)} seconds" if exc.wait else ""  # type: ignore[attr-defined]
        return errors.RateLimited(f"Request rate limit exceeded{wait}")
    if isinstance(exc, drf.ValidationError):
        return errors.InvalidData(_first_validation_message(exc.detail))
    if isinstance(exc, RequestDataTooBig):
        return errors.RequestTooLarge("The request body is too large")
    if is_query_canceled(exc):
        return query_timeout_error()
    if is_deadlock(exc):  # a writer that does not retry its own (suppression.services does)
        log.warning("a request's transaction was a deadlock's victim: %s", exc)
        return errors.WriteContention()
    if isinstance(exc, drf.APIException):
        error = errors.EngageError(str(exc.detail))
        error.status = exc.status_code
        return error
    log.exception("unhandled error", exc_info=exc)
    return errors.ServerError()


def envelope(error: errors.EngageError) -> dict:
    return {"errors": [error.as_dict()]}


# RFC 9110 §11.6.1: a 401 carries at least one challenge. The key goes raw in Authorization
# or as the Basic user name (engage/api/auth.py); the challenge names the Basic form.
WWW_AUTHENTICATE = 'Basic realm="engage"'


def _challenge(response: _Answer, error: errors.EngageError) -> _Answer:
    if error.status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: never lets ``{"detail": ...}`` or a stack trace out."""
    error = as_engage_error(exc)
    response = _challenge(Response(envelope(error), status=error.status), error)
    if isinstance(exc, drf.Throttled) and exc.wait:  # type: ignore[attr-defined]  # see as_engage_error
        response["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    return response


def error_response(error: errors.EngageError) -> JsonResponse:
    """The same envelope for code paths outside DRF (middleware, Django's 404/500 handlers)."""
    return _challenge(JsonResponse(envelope(error), status=error.status), error)
