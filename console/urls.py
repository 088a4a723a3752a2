"""Routes of the console's pages (browser pages, with a trailing slash)."""

from __future__ import annotations

from django.urls import path

from console.views import messages, overview, sink, template_test_send, transmission_new, transmissions, tutorial

urlpatterns = [
    path("", overview.overview, name="console-overview"),
    path("tutorial/", tutorial.tutorial, name="console-tutorial"),
    path("report/sink/", sink.sink_list, name="console-sink"),
    path("report/sink/<str:name>", sink.sink_message, name="console-sink-message"),
    path("report/sink/<str:name>/html", sink.sink_message_html, name="console-sink-message-html"),
    path("report/sink/<str:name>/raw", sink.sink_message_raw, name="console-sink-message-raw"),
    path("messages/", messages.messages, name="console-messages"),
    path("transmissions/", transmissions.transmission_list, name="console-transmissions"),
    path("transmissions/new/", transmission_new.transmission_new, name="console-transmission-new"),
    path("transmissions/<str:transmission_id>/", transmissions.transmission_detail, name="console-transmission"),
    path(
        "transmissions/<str:transmission_id>/cancel/",
        transmissions.transmission_cancel_view,
        name="console-transmission-cancel",
    ),
    path(
        "templates/<str:template_id>/test-send/",
        template_test_send.template_test_send,
        name="console-template-test-send",
    ),
]
