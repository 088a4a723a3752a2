"""Routes of the console's pages (browser pages, with a trailing slash)."""

from __future__ import annotations

from django.urls import path

from console.views import overview, template_test_send

urlpatterns = [
    path("", overview.overview, name="console-overview"),
    path(
        "templates/<str:template_id>/test-send/",
        template_test_send.template_test_send,
        name="console-template-test-send",
    ),
]
