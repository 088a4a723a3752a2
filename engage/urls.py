"""Routes. API routes are declared WITHOUT a trailing slash: ApiPathMiddleware strips it."""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from console.views.errors import not_found
from engage.api.views import api_not_found

# The admin belongs to Engage: its title, and "View site" leads to the console's overview.
admin.site.site_header = "Engage"
admin.site.site_title = "Engage"
admin.site.index_title = "Administration"
admin.site.site_url = "/"

urlpatterns = [
    # The OpenAPI document of every API operation (engage/api/schema.py) and a page to browse
    # it; both public, like SparkPost's own API reference.
    path(
        "api/v1/openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="openapi",
    ),
    path(
        "api/v1/docs",
        SpectacularSwaggerView.as_view(
            url_name="openapi",
            authentication_classes=[],
            permission_classes=[],
            template_name="engage/api_docs.html",  # the library's page with a way back to the console
        ),
        name="api-docs",
    ),
    path("api/v1/", include("templates_app.urls")),
    path("api/v1/", include("recipient_lists.urls")),
    path("api/v1/", include("suppression.urls")),
    path("api/v1/", include("consent.urls")),
    path("api/v1/", include("transmissions.urls")),
    path("", include("tracking.urls")),
    path("", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("", include("console.urls")),
    # Browsers ask for /favicon.ico on pages that name no icon (a JSON error, the API docs).
    path("favicon.ico", RedirectView.as_view(url=static("engage/favicon.svg"), permanent=True)),
    re_path(r"^api/.*$", api_not_found),
    # Last: any other path is the console's 404 page. A route, not only handler404, because
    # with DEBUG on (scripts/run) Django answers an unmatched path with its debug page, which
    # lists every route; handler404 serves DEBUG off (and console.middleware, views that raise).
    re_path(r"", not_found, name="not-found"),
]

handler404 = "console.views.errors.not_found"
handler400 = "console.views.errors.bad_request"
handler500 = "console.views.errors.server_error"
