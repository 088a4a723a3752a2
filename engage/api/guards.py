"""Refuses, before any view runs, request paths and query strings that nothing can store.

A NUL (``%00``) in a path or a query value reached PostgreSQL as a lookup and came back as a
500 (issue 10: ``/templates/%00``); Django decodes undecodable bytes to U+FFFD, so NUL is the
one character of a URL that no column can hold. Under ``/api/`` the answer is the envelope
(400 / 1200); elsewhere (tracking links, the report) a plain 404, as for any unknown link.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

from engage import errors
from engage.api.handler import error_response
from engage.api.paths import is_api_path


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path_info:
        return True
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class UnstorableUrlMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            if is_api_path(request.path_info):
                return error_response(
                    errors.InvalidParams("The URL contains a NUL character (%00), which is never valid")
                )
            return HttpResponseNotFound()
        return self.get_response(request)
