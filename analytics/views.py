"""Metrics API views (SPEC B §7): thin — parse, call one selector, render."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.utils import timezone
from pydantic import BaseModel
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import schemas, search, selectors, webhooks
from analytics import webhook_schemas as ws
from analytics.metrics import LINK_METRICS, MetricsQuery, ParamError, parse_metrics_query, parse_time, parse_timezone
from analytics.models import Webhook
from analytics.search import EventQuery
from analytics.serialize import event_flat
from engage import errors
from engage.api.fields import iso
from engage.api.schema import Query, operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, request_object, results
from mailcore.cursors import cursor_encode

METRICS_GRANTS: dict[str, tuple[str, ...]] = {"GET": ("metrics/view",)}


def metrics_query(request: Request, declared: type[Query], **kwargs: Any) -> MetricsQuery:
    """The parameters checked against ``declared``, then the validated query (the rules over
    several parameters); a missing required one is 400/1401, a bad one 400/1200."""
    parse_query(request, declared)
    try:
        return parse_metrics_query(request.query_params.dict(), now=timezone.now(), **kwargs)
    except ParamError as exc:
        raise (errors.RequiredParamMissing if exc.missing else errors.InvalidParams)(str(exc)) from None


def _link(href: str, rel: str) -> dict:
    return {"href": href, "rel": rel, "method": "GET"}


class MetricsIndexView(ApiView):
    grants = METRICS_GRANTS

    @operation(
        operation_id="metrics_index",
        summary="Links to the metrics resources",
        response=schemas.MetricsIndexAnswer,
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        base = "/api/v1/metrics"
        links = [_link(f"{base}/", "")] + [
            _link(f"{base}/{rel}", rel) for rel in ("campaigns", "deliverability", "domains", "templates")
        ]
        return results({}, links=links)


class DeliverabilityView(ApiView):
    grants = METRICS_GRANTS

    @operation(
        operation_id="metrics_deliverability",
        summary="Deliverability metrics over the window, as one row",
        query=schemas.MetricsSummaryQuery,
        response=schemas.MetricsSummaryAnswer,
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        row = selectors.metrics_summary(query=metrics_query(request, schemas.MetricsSummaryQuery))
        return results([row], links=[_link("/api/v1/metrics/deliverability", "deliverability")])


def _grouped_operation(key: str, name: str, answer: type[BaseModel]) -> Callable:
    return operation(
        operation_id=f"metrics_deliverability_{name}",
        summary=f"Deliverability metrics per {key}, largest first",
        query=schemas.MetricsGroupedQuery,
        response=answer,
        tags=["metrics"],
    )


class DeliverabilityGroupedView(ApiView):
    grants = METRICS_GRANTS
    key = ""

    def get(self, request: Request) -> Response:
        query = metrics_query(request, schemas.MetricsGroupedQuery)
        return results(selectors.metrics_grouped(query=query, key=self.key))


class DeliverabilityDomainView(DeliverabilityGroupedView):
    key = "domain"

    @_grouped_operation("recipient domain", "domain", schemas.DomainRows)
    def get(self, request: Request) -> Response:
        return super().get(request)


class DeliverabilityCampaignView(DeliverabilityGroupedView):
    key = "campaign_id"

    @_grouped_operation("campaign", "campaign", schemas.CampaignRows)
    def get(self, request: Request) -> Response:
        return super().get(request)


class DeliverabilityTemplateView(DeliverabilityGroupedView):
    key = "template_id"

    @_grouped_operation("template", "template", schemas.TemplateRows)
    def get(self, request: Request) -> Response:
        return super().get(request)


class TimeSeriesView(ApiView):
    grants = METRICS_GRANTS

    @operation(
        operation_id="metrics_deliverability_time_series",
        summary="Deliverability metrics per time bucket, oldest first",
        description=(
            "Deliverability metrics per bucket of `precision` in `timezone`, every bucket of the window present, "
            f"oldest first. A window of more than {schemas.MAX_SERIES_BUCKETS} buckets is refused (400, naming "
            "from, to and precision)."
        ),
        query=schemas.MetricsTimeSeriesQuery,
        response=schemas.TimeSeriesRows,
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        query = metrics_query(request, schemas.MetricsTimeSeriesQuery, time_series=True)
        return results(selectors.metrics_time_series(query=query))


class LinkNameView(ApiView):
    grants = METRICS_GRANTS

    @operation(
        operation_id="metrics_deliverability_link_name",
        summary="Clicks per link name, most clicked first",
        query=schemas.MetricsLinkNameQuery,
        response=schemas.LinkNameRows,
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        query = metrics_query(request, schemas.MetricsLinkNameQuery, allowed=LINK_METRICS)
        return results(selectors.metrics_link_names(query=query))


class ValuesListView(ApiView):
    grants = METRICS_GRANTS
    key = ""
    label = ""

    def get(self, request: Request) -> Response:
        query = metrics_query(request, schemas.MetricsValuesQuery, need_metrics=False)
        return results({self.label: selectors.metrics_values(query=query, key=self.key)})


def _values_operation(label: str, answer: type[BaseModel]) -> Callable:
    return operation(
        operation_id=f"metrics_{label}",
        summary=f"The {label} with data in the window",
        query=schemas.MetricsValuesQuery,
        response=answer,
        tags=["metrics"],
    )


class CampaignsListView(ValuesListView):
    key, label = "campaign_id", "campaigns"

    @_values_operation("campaigns", schemas.CampaignValues)
    def get(self, request: Request) -> Response:
        return super().get(request)


class DomainsListView(ValuesListView):
    key, label = "domain", "domains"

    @_values_operation("domains", schemas.DomainValues)
    def get(self, request: Request) -> Response:
        return super().get(request)


class TemplatesListView(ValuesListView):
    key, label = "template_id", "templates"

    @_values_operation("templates", schemas.TemplateValues)
    def get(self, request: Request) -> Response:
        return super().get(request)


EVENTS_GRANTS: dict[str, tuple[str, ...]] = {"GET": ("message_events/view",)}


def _parsed(parse: Callable[..., EventQuery], request: Request) -> EventQuery:
    try:
        return parse(request.query_params.dict(), now=timezone.now())
    except ParamError as exc:
        raise errors.InvalidParams(str(exc)) from None


class EventsMessageView(ApiView):
    """``GET /api/v1/events/message``: cursor paging, ``links.next`` until the last page."""

    grants = EVENTS_GRANTS

    @operation(
        operation_id="events_message",
        summary="Search events, newest first (cursor paging)",
        description=(
            "Events matching the filters in the window, newest first; `links.next` until the last page, then `{}`. "
            "SparkPost's sending_domains, sending_ips, ip_pools, subaccounts, mailbox_providers, "
            "mailbox_provider_regions, ab_tests and ab_test_versions filters are refused (400)."
        ),
        query=schemas.EventsMessageQuery,
        response=schemas.EventsMessageAnswer,
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        parse_query(request, schemas.EventsMessageQuery)
        query = _parsed(search.parse_events_message, request)
        rows, total, more = selectors.events_search(query=query)
        links = {}
        if more and rows:
            params = request.query_params.copy()
            params["cursor"] = cursor_encode(rows[-1]["timestamp"], rows[-1]["id"])
            links["next"] = f"/api/v1/events/message?{params.urlencode()}"
        return results([event_flat(row) for row in rows], total_count=total, links=links)


class MessageEventsView(ApiView):
    """``GET /api/v1/message-events``: SparkPost's older page-paged search."""

    grants = EVENTS_GRANTS

    @operation(
        operation_id="message_events",
        summary="Search events, newest first (page paging, SparkPost's older names)",
        query=schemas.MessageEventsQuery,
        response=schemas.MessageEventsAnswer,
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        parse_query(request, schemas.MessageEventsQuery)
        query = _parsed(search.parse_message_events, request)
        rows, total, _more = selectors.events_search(query=query)
        assert total is not None  # with_total
        last = max(1, -(-total // query.per_page))
        links = []
        for rel, page in (("first", 1), ("previous", query.page - 1), ("next", query.page + 1), ("last", last)):
            if 1 <= page <= last and (rel in ("first", "last") or page != query.page):
                params = request.query_params.copy()
                params["page"] = str(page)
                links.append({"href": f"/api/v1/message-events?{params.urlencode()}", "rel": rel})
        return results([event_flat(row, tz=query.tz) for row in rows], total_count=total, links=links)


WEBHOOK_GRANTS = {
    "GET": ("webhooks/view", "webhooks/modify"),
    "POST": ("webhooks/modify",),
    "PUT": ("webhooks/modify",),
    "DELETE": ("webhooks/modify",),
}


def _iso(value: datetime | None, tz: tzinfo | None = None) -> str | None:
    return iso(value.astimezone(tz)) if value else None


def _webhook_link(
    request: Request,
    hook_id: UUID,
    suffix: str = "",
    rel: str = "urn.msys.webhooks.webhook",
    methods: Iterable[str] = ("GET", "PUT"),
) -> dict:
    return {
        "href": request.build_absolute_uri(f"/api/v1/webhooks/{hook_id}{suffix}"),
        "rel": rel,
        "method": list(methods),
    }


def _webhook_out(request: Request, hook: Webhook, tz: tzinfo) -> dict:
    return {
        "id": str(hook.pk), "name": hook.name, "target": hook.target, "events": list(hook.events),
        "auth_type": hook.auth_type, "auth_token": hook.auth_token, "auth_request_details": hook.auth_request_details,
        "auth_credentials": hook.auth_credentials, "custom_headers": hook.custom_headers, "active": hook.active,
        "last_successful": _iso(hook.last_successful, tz), "last_failure": _iso(hook.last_failure, tz),
    }  # fmt: skip


def _tz(request: Request) -> ZoneInfo:
    try:
        return parse_timezone(request.query_params.get("timezone"))
    except ParamError as exc:
        raise errors.InvalidParams(str(exc)) from None


class WebhooksView(ApiView):
    grants = WEBHOOK_GRANTS

    @operation(
        operation_id="webhooks_list",
        summary="List webhooks",
        query=ws.TimeZoneQuery,
        response=ws.WebhookList,
        tags=["webhooks"],
    )
    def get(self, request: Request) -> Response:
        parse_query(request, ws.TimeZoneQuery)
        tz = _tz(request)
        return results([
            {**_webhook_out(request, hook, tz), "links": [_webhook_link(request, hook.pk)]}
            for hook in selectors.webhook_list()
        ])  # fmt: skip

    @operation(
        operation_id="webhooks_create",
        summary="Create a webhook (after a test POST to its target)",
        body=ws.WebhookCreate,
        response=ws.WebhookSaved,
        tags=["webhooks"],
    )
    def post(self, request: Request) -> Response:
        parse_body(request, ws.WebhookCreate)
        hook = webhooks.webhook_create(data=request_object(request))
        return results({"id": str(hook.pk), "links": [_webhook_link(request, hook.pk)]})


class WebhookView(ApiView):
    grants = WEBHOOK_GRANTS

    @operation(
        operation_id="webhooks_retrieve",
        summary="Retrieve a webhook",
        query=ws.TimeZoneQuery,
        response=ws.WebhookDetail,
        tags=["webhooks"],
    )
    def get(self, request: Request, hook_id: UUID) -> Response:
        parse_query(request, ws.TimeZoneQuery)
        hook = selectors.webhook_get(hook_id=hook_id)
        links = [
            _webhook_link(request, hook.pk, "/validate", "urn.msys.webhooks.validate", ["POST"]),
            _webhook_link(request, hook.pk, "/batch-status", "urn.msys.webhooks.batches", ["GET"]),
        ]
        return results({**_webhook_out(request, hook, _tz(request)), "links": links})

    @operation(
        operation_id="webhooks_update",
        summary="Update a webhook",
        body=ws.WebhookUpdate,
        response=ws.WebhookSaved,
        tags=["webhooks"],
    )
    def put(self, request: Request, hook_id: UUID) -> Response:
        parse_body(request, ws.WebhookUpdate)
        hook = webhooks.webhook_update(hook=selectors.webhook_get(hook_id=hook_id), data=request_object(request))
        return results(
            {
                "id": str(hook.pk),
                "links": [_webhook_link(request, hook.pk, "/validate", "urn.msys.webhooks.validate", ["POST"])],
            }
        )

    @operation(operation_id="webhooks_delete", summary="Delete a webhook", status=204, tags=["webhooks"])
    def delete(self, request: Request, hook_id: UUID) -> Response:
        webhooks.webhook_delete(hook=selectors.webhook_get(hook_id=hook_id))
        return no_content()


class WebhookValidateView(ApiView):
    grants = WEBHOOK_GRANTS

    @operation(
        operation_id="webhooks_validate",
        summary="POST a test message to the webhook's target",
        body=ws.WebhookValidate,
        response=ws.WebhookValidated,
        tags=["webhooks"],
    )
    def post(self, request: Request, hook_id: UUID) -> Response:
        body = parse_body(request, ws.WebhookValidate)
        hook = selectors.webhook_get(hook_id=hook_id)
        message = body.message if body.message is not None else {"msys": {}}
        return results(webhooks.webhook_validate(hook=hook, message=message))


class WebhookBatchStatusView(ApiView):
    grants = WEBHOOK_GRANTS

    @operation(
        operation_id="webhooks_batch_status",
        summary="The webhook's batches that failed at least once: retrying, expired, or delivered after a retry in the last 24 hours (as SparkPost)",
        query=ws.BatchStatusQuery,
        response=ws.BatchStatus,
        tags=["webhooks"],
    )
    def get(self, request: Request, hook_id: UUID) -> Response:
        limit = parse_query(request, ws.BatchStatusQuery).limit or 1000
        hook = selectors.webhook_get(hook_id=hook_id, include_deleted=True)
        tz = _tz(request)
        return results([
            {
                "batch_id": str(b.pk), "ts": _iso(b.last_attempt_at or b.created_at, tz), "attempts": b.attempts,
                "response_code": b.response_code, "failure_code": b.failure, "latency": b.latency_ms,
                "batch_size": b.batch_size, "state": b.state, "next_attempt": _iso(b.next_attempt_at, tz)
                if b.state == "pending" else None,
            }
            for b in selectors.webhook_batch_status(hook_id=hook.pk, limit=limit, now=timezone.now())
        ])  # fmt: skip


class WebhookReplayView(ApiView):
    """Beyond SparkPost: re-deliver stored events, by time window or after an event id."""

    grants = WEBHOOK_GRANTS

    @operation(
        operation_id="webhooks_replay",
        summary="Deliver stored events again (Engage's own)",
        body=ws.WebhookReplay,
        response=ws.Replayed,
        tags=["webhooks"],
    )
    def post(self, request: Request, hook_id: UUID) -> Response:
        body = parse_body(request, ws.WebhookReplay)
        hook = selectors.webhook_get(hook_id=hook_id)
        if body.since_event_id is not None:
            count = webhooks.webhook_replay(hook=hook, since_event_id=str(body.since_event_id))
        else:
            if body.from_ is None:
                raise errors.RequiredFieldMissing("give 'from' (and optionally 'to') or 'since_event_id'")
            try:
                tz = parse_timezone(body.timezone or "UTC")
                start = parse_time(body.from_, "from", tz)
                end = parse_time(body.to, "to", tz) if body.to else timezone.now()
            except ParamError as exc:
                raise errors.InvalidData(str(exc)) from None
            count = webhooks.webhook_replay(hook=hook, start=start, end=end)
        return results({"events": count})
