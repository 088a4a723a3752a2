"""The tracking endpoints (SPEC A.2): open pixel ``/q/``, click redirect ``/f/``, and the
List-Unsubscribe URL ``/u/``. Plain Django views, no auth, no database read: the token
carries everything the event needs, and events go to Redis (PostgreSQL's outbox, then a local
spool, only while Redis is down: ``tracking.outbox``).

A token that does not verify (tampered, truncated, unknown key, or of another kind) gets a
small plain 404 and records nothing, so a tracked link is never an open redirect. An
expired token still redirects / returns the pixel but records nothing. HEAD answers like
GET but records nothing: it is link checkers and prefetchers, not people.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from mailcore.tokens import Decoded, InvalidToken
from tracking.services import client_from_request, engagement_record
from tracking.signing import tracking_signer

# A 1x1 transparent GIF (43 bytes).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = "no-cache, no-store, must-revalidate"
_PIXEL_KINDS = frozenset({"open", "initial_open"})

# Bytes that cannot go in a Location header as they are (controls, DEL, non-ASCII) and the
# space (header values are trimmed and a URI cannot hold one; browsers send %20 anyway) are
# percent-encoded from the URL's UTF-8; every other byte, '%' included, is kept exactly.
_LOCATION_ESCAPES = {b: f"%{b:02X}" for b in (*range(0x21), 0x7F, *range(0x80, 0x100))}


def location_header_value(url: str) -> str:
    """``url`` as a Location header value: byte-for-byte, except the bytes a header cannot
    carry, which are percent-encoded (UTF-8). Unlike ``HttpResponseRedirect`` (which runs
    ``iri_to_uri`` and also encodes ``"<>\\^`{|}``) it leaves everything else alone."""
    if url.isascii() and url.isprintable() and " " not in url:
        return url
    return "".join(_LOCATION_ESCAPES.get(b) or chr(b) for b in url.encode("utf-8", "surrogatepass"))


def not_found() -> HttpResponse:
    return HttpResponse(b"Not Found\n", status=404, content_type="text/plain; charset=utf-8")


def _verify(token: str, kinds: frozenset[str] | str) -> Decoded | None:
    try:
        decoded = tracking_signer().decode(token, now=int(time.time()), max_age=settings.ENGAGE_TRACKING_LINK_EXPIRY)
    except InvalidToken:
        return None
    if decoded.kind not in kinds if isinstance(kinds, frozenset) else decoded.kind != kinds:
        return None
    return decoded


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """``GET /q/<token>``: the transparent GIF; records ``open`` or ``initial_open``."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    decoded = _verify(token, _PIXEL_KINDS)
    if decoded is None:
        return not_found()
    if request.method == "GET" and not decoded.expired:
        engagement_record(token=decoded, client=client_from_request(request))
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = NO_CACHE
    return response


def click_redirect(request: HttpRequest, token: str, sublink: str | None = None) -> HttpResponse:
    """``GET /f/<token>`` and ``/f/<sublink>/<token>``: 302 to the signed target URL;
    records ``click`` (and ``link_unsubscribe`` for an unsubscribe link). The sublink is
    cosmetic (``data-msys-sublink``) and not part of what is verified."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    decoded = _verify(token, "click")
    if decoded is None or not decoded.target_url:
        return not_found()
    if request.method == "GET" and not decoded.expired:
        engagement_record(token=decoded, client=client_from_request(request))
    response = HttpResponse(status=302)
    response["Location"] = location_header_value(decoded.target_url)
    response["Cache-Control"] = NO_CACHE
    return response


_CONFIRM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>Unsubscribe</title></head>
<body><p>Unsubscribe {rcpt} from these emails?</p>
<form method="post" action=""><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form></body></html>
"""
_DONE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body><p>You have been unsubscribed.</p></body></html>
"""


@csrf_exempt
def list_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """``/u/<token>`` (RFC 8058 one-click): POST records ``list_unsubscribe`` and answers
    200; GET shows a confirmation page whose form POSTs here (GET records nothing, since
    mail scanners follow links). Unsubscribes are recorded even after link expiry: a
    request to stop mail must not be lost."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    decoded = _verify(token, "unsubscribe")
    if decoded is None:
        return not_found()
    if request.method == "POST":
        engagement_record(token=decoded, client=client_from_request(request))
        page = _DONE_PAGE
    else:
        page = _CONFIRM_PAGE.format(rcpt=escape(decoded.rcpt_to))
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = NO_CACHE
    return response


def bench_redirect(request: HttpRequest) -> HttpResponse:
    """A bare Django redirect, the baseline of ``bench/click_redirect.py`` (routed only
    when ``ENGAGE_BENCH_ROUTES`` is true)."""
    from django.http import HttpResponseRedirect

    return HttpResponseRedirect("https://example.com/landing?utm_source=bench")
