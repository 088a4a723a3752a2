"""Routes of the console's pages (browser pages, with a trailing slash)."""

from __future__ import annotations

from django.urls import path

from console.views import overview, sink

urlpatterns = [
    path("", overview.overview, name="console-overview"),
    path("report/sink/", sink.sink_list, name="console-sink"),
    path("report/sink/<str:name>", sink.sink_message, name="console-sink-message"),
    path("report/sink/<str:name>/html", sink.sink_message_html, name="console-sink-message-html"),
    path("report/sink/<str:name>/raw", sink.sink_message_raw, name="console-sink-message-raw"),
]
