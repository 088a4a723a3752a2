"""The base of every API view, the success wrapper, and the API's 404/500 answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engage import errors
from engage.api.handler import error_response


def results(data: Any, status: int = 200, **extra: Any) -> Response:
    """A success body: ``{"results": data}`` (SPEC A.1: 200, never 201)."""
    body = {"results": data}
    body.update(extra)
    return Response(body, status=status)


def no_content() -> Response:
    return Response(status=204)


def query_bool(request: Request, name: str, default: bool | None = None) -> bool | None:
    """A boolean query parameter; a value that is not true/false is a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"true", "1"}:
        return True
    if value in {"false", "0"}:
        return False
    raise errors.InvalidParams(f"Query parameter '{name}' must be true or false, got '{raw}'")


def query_int(
    request: Request, name: str, default: int | None = None, *, minimum: int = 0, maximum: int = 2**31 - 1
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidParams(f"Query parameter '{name}' must be an integer, got '{raw}'") from None
    if not minimum <= value <= maximum:
        raise errors.InvalidParams(f"Query parameter '{name}' must be between {minimum} and {maximum}")
    return value


def request_object(request: Request) -> dict:
    """The JSON body, which must be an object; ``null`` values mean "not given" and are dropped."""
    data = request.data
    if not isinstance(data, dict):
        raise errors.InvalidData("The request body must be a JSON object")
    return {key: value for key, value in data.items() if value is not None}


class ApiView(APIView):
    """Every ``/api/v1`` view: declares ``grants`` per method (checked by HasGrant).

    HEAD is GET without the body (RFC 9110 §9.3.2; the body is dropped for every path by
    ``engage.api.middleware.HttpFramingMiddleware``). OPTIONS (RFC 9110 §9.3.7) answers 200
    with no content and ``Allow`` listing the methods the resource supports, for any valid
    key; without one it is 401 like every other method.
    """

    grants: dict[str, tuple[str, ...]] = {}
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        return Response(status=200)  # DRF adds Allow (default_response_headers)

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        raise errors.MethodNotAllowed(f"{request.method} is not supported on {request.path}")


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(errors.InvalidUri(f"No API resource at {request.path}"))


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response(errors.ServerError())
