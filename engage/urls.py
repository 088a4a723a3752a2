"""Routes. API routes are declared WITHOUT a trailing slash: ApiPathMiddleware strips it."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from engage.api.views import api_not_found

urlpatterns = [
    path("api/v1/", include("templates_app.urls")),
    path("api/v1/", include("recipient_lists.urls")),
    path("api/v1/", include("transmissions.urls")),
    path("", include("tracking.urls")),
    path("", include("analytics.urls")),
    path("admin/", admin.site.urls),
    re_path(r"^api/.*$", api_not_found),
]

handler404 = "engage.api.views.api_not_found"
handler500 = "engage.api.views.server_error"
