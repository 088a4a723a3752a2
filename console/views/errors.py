"""The error answers of the web process: 404 (``engage/urls.py``: its last route and
``handler404``), 400 and 500 (``handler400``/``handler500``), and a CSRF refusal
(``CSRF_FAILURE_VIEW``); ``console.middleware.ErrorPagesMiddleware`` gives a view's exception to
them before Django's debug pages can answer it.

An ``/api/`` path (and ``/api``) keeps SparkPost's JSON envelope (``engage.api.views.api_not_found``:
404, code 1101); any other path gets a small HTML page with Engage's name, a link to ``/``
and to every console page. Never Django's debug 404 page, whatever ``ENGAGE_DEBUG`` says
(``scripts/run`` sets it): that page lists every route of the project.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from console.pages import PAGES, Page, pages_for
from engage import errors
from engage.api.handler import error_response
from engage.api.paths import is_api_path
from engage.api.views import api_not_found

#: The longest part of an unknown path the page repeats.
SHOWN_PATH_CHARS = 200


def _pages(request: HttpRequest) -> tuple[Page, ...]:
    user = getattr(request, "user", None)  # none on a 404 answered before the session is read
    return PAGES if user is None else pages_for(user)


@csrf_exempt  # it changes nothing: a POST to an unknown path is a 404 too, not a CSRF refusal
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for ``request.path``, any method: JSON on the API, else the console's page (``text/html``)."""
    if is_api_path(request.path_info):
        return api_not_found(request, exception)
    path = request.path
    shown = path if len(path) <= SHOWN_PATH_CHARS else path[:SHOWN_PATH_CHARS] + "…"
    # A console page typed without its trailing slash (no redirect: APPEND_SLASH is off).
    suggestion = path + "/" if path + "/" in {page.url for page in PAGES} else ""
    context = {"path": shown, "suggestion": suggestion, "pages": _pages(request)}
    return render(request, "console/404.html", context, status=404)


_PLAIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Engage</title></head>
<body style="font:15px/1.45 system-ui,sans-serif;margin:2rem"><h1>{title}</h1><p>{text}</p>
<p><a href="/">Go to the overview</a></p></body></html>
"""


def _plain_page(status: int, title: str, text: str) -> HttpResponse:
    """A page that renders without templates or the database (an error may come from either)."""
    return HttpResponse(
        _PLAIN_PAGE.format(title=title, text=text), status=status, content_type="text/html; charset=utf-8"
    )


@csrf_exempt
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400: the API's envelope on ``/api/``, else a plain page."""
    if is_api_path(request.path_info):
        return error_response(errors.InvalidParams("The request could not be read"))
    return _plain_page(400, "Bad request", "Engage could not read this request.")


@csrf_exempt
def server_error(request: HttpRequest) -> HttpResponse:
    """500: the API's envelope on ``/api/``, else a plain page (the traceback is in the log)."""
    if is_api_path(request.path_info):
        return error_response(errors.ServerError())
    return _plain_page(500, "Server error", "Something went wrong on Engage's side; the details are in its log.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403 for a form whose CSRF check failed (a page left open across a sign-in, cookies
    blocked): what to do, never Django's debug explanation."""
    return _plain_page(
        403,
        "This form has expired",
        "The page was opened before you signed in or out, or your browser does not keep cookies for "
        "this site. Go back, reload the page and send the form again.",
    )
