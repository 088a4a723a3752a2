"""Request handling shared by every ``/api/`` path, before URL resolution.

- ``/x`` and ``/x/`` are the same resource and neither redirects (SPEC A.1): the trailing
  slash is removed from ``path_info`` so each route is declared once, without it.
- A body whose declared length is over the limit is refused with 413 before it is read.
"""

from __future__ import annotations

from django.conf import settings

from engage import errors
from engage.api.handler import error_response


class ApiPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
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
