"""Routes of the analytics app: API paths WITHOUT a trailing slash (ApiPathMiddleware)."""

from __future__ import annotations

from django.urls import path

from analytics import report, views

urlpatterns = [
    path("api/v1/metrics", views.MetricsIndexView.as_view()),
    path("api/v1/metrics/deliverability", views.DeliverabilityView.as_view()),
    path("api/v1/metrics/deliverability/domain", views.DeliverabilityDomainView.as_view()),
    path("api/v1/metrics/deliverability/campaign", views.DeliverabilityCampaignView.as_view()),
    path("api/v1/metrics/deliverability/template", views.DeliverabilityTemplateView.as_view()),
    path("api/v1/metrics/deliverability/time-series", views.TimeSeriesView.as_view()),
    path("api/v1/metrics/deliverability/link-name", views.LinkNameView.as_view()),
    path("api/v1/metrics/campaigns", views.CampaignsListView.as_view()),
    path("api/v1/metrics/domains", views.DomainsListView.as_view()),
    path("api/v1/metrics/templates", views.TemplatesListView.as_view()),
    path("api/v1/events/message", views.EventsMessageView.as_view()),
    path("api/v1/message-events", views.MessageEventsView.as_view()),
    path("api/v1/webhooks", views.WebhooksView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>", views.WebhookView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/validate", views.WebhookValidateView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/batch-status", views.WebhookBatchStatusView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/replay", views.WebhookReplayView.as_view()),
    path("report/", report.report, name="analytics-report"),
]
