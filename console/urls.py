"""Routes of the console's pages (browser pages, with a trailing slash)."""

from __future__ import annotations

from django.urls import path

from console.views import messages, overview, transmissions

urlpatterns = [
    path("", overview.overview, name="console-overview"),
    path("messages/", messages.messages, name="console-messages"),
    path("transmissions/", transmissions.transmission_list, name="console-transmissions"),
    path("transmissions/<str:transmission_id>/", transmissions.transmission_detail, name="console-transmission"),
    path(
        "transmissions/<str:transmission_id>/cancel/",
        transmissions.transmission_cancel_view,
        name="console-transmission-cancel",
    ),
]
