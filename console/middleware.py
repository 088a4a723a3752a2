"""``NotFoundMiddleware``: a view that raises ``Http404`` (the admin's unknown pages, a sink
message that is gone, ...) is answered by ``console.views.errors.not_found``, as an unknown
path is. Django renders its debug 404 page (every route of the project) for such a view
whenever ``DEBUG`` is on, bypassing ``handler404``; this middleware's ``process_exception``
comes first. Other exceptions pass on untouched."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse

from console.views.errors import not_found


class NotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return not_found(request, exception)
        return None
