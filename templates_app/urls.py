from __future__ import annotations

from django.urls import path

from templates_app import views

urlpatterns = [
    path("templates", views.TemplateListView.as_view()),
    path("templates/<str:template_id>", views.TemplateDetailView.as_view()),
    path("templates/<str:template_id>/preview", views.TemplatePreviewView.as_view()),
    path("link-check", views.LinkCheckView.as_view()),
]
