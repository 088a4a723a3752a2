from __future__ import annotations

from django.urls import path

from transmissions import views

urlpatterns = [
    path("transmissions", views.TransmissionListView.as_view()),
    path("transmissions/<str:transmission_id>", views.TransmissionDetailView.as_view()),
]
