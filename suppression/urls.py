from __future__ import annotations

from django.urls import path

from suppression import views

# ``summary`` before ``{recipient}`` (it is no address); ``path:`` because an address may
# hold a ``/`` (raw, or ``%2F`` decoded).
urlpatterns = [
    path("suppression-list", views.SuppressionListView.as_view()),
    path("suppression-list/summary", views.SuppressionSummaryView.as_view()),
    path("suppression-list/<path:recipient>", views.SuppressionEntryView.as_view()),
]
