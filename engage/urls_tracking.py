"""Routes of a tracking web process (``ENGAGE_SERVE=tracking``): the open pixel, click and
List-Unsubscribe endpoints of ``tracking/urls.py`` and nothing else; any other path (API,
admin, report) is the same small plain 404 as a bad token. The API process
(``engage/urls.py``) serves the tracking routes too, for links sent while it was their host."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path

from tracking.views import not_found as plain_not_found


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return plain_not_found()


# The catch-all answers even under ENGAGE_DEBUG (where Django would show its 404 page).
urlpatterns = [path("", include("tracking.urls")), re_path(r"", not_found)]

handler404 = "engage.urls_tracking.not_found"
