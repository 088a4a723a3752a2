"""Tracking routes: ``/q/<token>`` open pixel, ``/f/[<sublink>/]<token>`` click,
``/u/<token>`` List-Unsubscribe. Tokens are base64url, so the last path segment is the
token and a sublink may contain slashes."""

from __future__ import annotations

from django.conf import settings
from django.urls import path, re_path

from tracking import views

#: The open pixel's and the click's paths (without the leading slash), also matched by the
#: click/open fast path (engage/fastpath.py), so both read one pattern.
OPEN_PATH = r"q/(?P<token>[A-Za-z0-9_-]+)"
CLICK_PATH = r"f/(?:(?P<sublink>.+)/)?(?P<token>[A-Za-z0-9_-]+)"

urlpatterns = [
    re_path(f"^{OPEN_PATH}$", views.open_pixel, name="tracking-open"),
    re_path(f"^{CLICK_PATH}$", views.click_redirect, name="tracking-click"),
    re_path(r"^u/(?P<token>[A-Za-z0-9_-]+)$", views.list_unsubscribe, name="tracking-unsubscribe"),
]

if settings.ENGAGE_BENCH_ROUTES:
    urlpatterns.append(path("bench/redirect", views.bench_redirect, name="bench-redirect"))
