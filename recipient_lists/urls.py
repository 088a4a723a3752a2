from __future__ import annotations

from django.urls import path

from recipient_lists import views

urlpatterns = [
    path("recipient-lists", views.RecipientListListView.as_view()),
    path("recipient-lists/<str:list_id>", views.RecipientListDetailView.as_view()),
]
