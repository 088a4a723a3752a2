"""The 404 answer of the web process (``engage/urls.py``: its last route and ``handler404``;
``console.middleware.NotFoundMiddleware`` for a view that raises ``Http404``).

An ``/api/`` path (and ``/api``) keeps SparkPost's JSON envelope (``engage.api.views.api_not_found``:
404, code 1101); any other path gets a small HTML page with Engage's name, a link to ``/``
and to every console page. Never Django's debug 404 page, whatever ``ENGAGE_DEBUG`` says
(``scripts/run`` sets it): that page lists every route of the project.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from console.pages import PAGES
from engage.api.views import api_not_found

#: The longest part of an unknown path the page repeats.
SHOWN_PATH_CHARS = 200


def is_api_path(path: str) -> bool:
    """Whether ``path`` (``request.path``) belongs to the API, which answers JSON."""
    return path == "/api" or path.startswith("/api/")


@csrf_exempt  # it changes nothing: a POST to an unknown path is a 404 too, not a CSRF refusal
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for ``request.path``, any method: JSON on the API, else the console's page (``text/html``)."""
    if is_api_path(request.path):
        return api_not_found(request, exception)
    path = request.path
    shown = path if len(path) <= SHOWN_PATH_CHARS else path[:SHOWN_PATH_CHARS] + "…"
    # A console page typed without its trailing slash (no redirect: APPEND_SLASH is off).
    suggestion = path + "/" if path + "/" in {page.url for page in PAGES} else ""
    context = {"path": shown, "suggestion": suggestion, "pages": PAGES}
    return render(request, "console/404.html", context, status=404)
