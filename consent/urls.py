from __future__ import annotations

from django.urls import path

from consent import views

# ``path:`` because an address may hold a ``/`` (raw, or ``%2F`` decoded).
urlpatterns = [
    path("tracking-consent", views.ConsentListView.as_view()),
    path("tracking-consent/<path:recipient>", views.ConsentEntryView.as_view()),
]
