"""Routes of the analytics app: API paths WITHOUT a trailing slash (ApiPathMiddleware)."""

from __future__ import annotations

from django.urls import path

from analytics import report, views

urlpatterns = [
    path("api/v1/metrics", views.MetricsIndexView.as_view()),
    path("api/v1/metrics/deliverability", views.DeliverabilityView.as_view()),
    path("api/v1/metrics/deliverability/domain", views.DeliverabilityGroupedView.as_view(key="domain")),
    path("api/v1/metrics/deliverability/campaign", views.DeliverabilityGroupedView.as_view(key="campaign_id")),
    path("api/v1/metrics/deliverability/template", views.DeliverabilityGroupedView.as_view(key="template_id")),
    path("api/v1/metrics/deliverability/time-series", views.TimeSeriesView.as_view()),
    path("api/v1/metrics/deliverability/link-name", views.LinkNameView.as_view()),
    path("api/v1/metrics/campaigns", views.ValuesListView.as_view(key="campaign_id", label="campaigns")),
    path("api/v1/metrics/domains", views.ValuesListView.as_view(key="domain", label="domains")),
    path("api/v1/metrics/templates", views.ValuesListView.as_view(key="template_id", label="templates")),
    path("api/v1/events/message", views.EventsMessageView.as_view()),
    path("api/v1/message-events", views.MessageEventsView.as_view()),
    path("api/v1/webhooks", views.WebhooksView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>", views.WebhookView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/validate", views.WebhookValidateView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/batch-status", views.WebhookBatchStatusView.as_view()),
    path("api/v1/webhooks/<uuid:hook_id>/replay", views.WebhookReplayView.as_view()),
    path("report/", report.report, name="analytics-report"),
    path("report/sink/", report.sink_list, name="analytics-sink"),
    path("report/sink/<str:name>", report.sink_message, name="analytics-sink-message"),
]
