"""Routes of the console's pages (browser pages, with a trailing slash)."""

from __future__ import annotations

from django.urls import path

from console.views import overview

urlpatterns = [
    path("", overview.overview, name="console-overview"),
]
