"""Metrics API views (SPEC B §7): thin — parse, call one selector, render."""

from __future__ import annotations

from django.utils import timezone

from analytics import search, selectors
from analytics.metrics import LINK_METRICS, MetricsQuery, ParamError, parse_metrics_query
from analytics.serialize import event_flat
from engage import errors
from engage.api.views import ApiView, results

METRICS_GRANTS = {"GET": ("metrics/view",)}


def metrics_query(request, **kwargs) -> MetricsQuery:
    """The validated metrics parameters; a missing required one is 400/1401, a bad one 400/1200."""
    try:
        return parse_metrics_query(request.query_params.dict(), now=timezone.now(), **kwargs)
    except ParamError as exc:
        raise (errors.RequiredParamMissing if exc.missing else errors.InvalidParams)(str(exc)) from None


def _link(href: str, rel: str) -> dict:
    return {"href": href, "rel": rel, "method": "GET"}


class MetricsIndexView(ApiView):
    grants = METRICS_GRANTS

    def get(self, request):
        base = "/api/v1/metrics"
        links = [_link(f"{base}/", "")] + [
            _link(f"{base}/{rel}", rel) for rel in ("campaigns", "deliverability", "domains", "templates")
        ]
        return results({}, links=links)


class DeliverabilityView(ApiView):
    grants = METRICS_GRANTS

    def get(self, request):
        row = selectors.metrics_summary(query=metrics_query(request))
        return results([row], links=[_link("/api/v1/metrics/deliverability", "deliverability")])


class DeliverabilityGroupedView(ApiView):
    grants = METRICS_GRANTS
    key = ""

    def get(self, request):
        return results(selectors.metrics_grouped(query=metrics_query(request), key=self.key))


class TimeSeriesView(ApiView):
    grants = METRICS_GRANTS

    def get(self, request):
        return results(selectors.metrics_time_series(query=metrics_query(request)))


class LinkNameView(ApiView):
    grants = METRICS_GRANTS

    def get(self, request):
        return results(selectors.metrics_link_names(query=metrics_query(request, allowed=LINK_METRICS)))


class ValuesListView(ApiView):
    grants = METRICS_GRANTS
    key = ""
    label = ""

    def get(self, request):
        query = metrics_query(request, need_metrics=False)
        return results({self.label: selectors.metrics_values(query=query, key=self.key)})


EVENTS_GRANTS = {"GET": ("message_events/view",)}


def _parsed(parse, request):
    try:
        return parse(request.query_params.dict(), now=timezone.now())
    except ParamError as exc:
        raise errors.InvalidParams(str(exc)) from None


class EventsMessageView(ApiView):
    """``GET /api/v1/events/message``: cursor paging, ``links.next`` until the last page."""

    grants = EVENTS_GRANTS

    def get(self, request):
        query = _parsed(search.parse_events_message, request)
        rows, total, more = selectors.events_search(query=query)
        links = {}
        if more and rows:
            params = request.query_params.copy()
            params["cursor"] = search.cursor_encode(rows[-1]["timestamp"], rows[-1]["id"])
            links["next"] = f"/api/v1/events/message?{params.urlencode()}"
        return results([event_flat(row) for row in rows], total_count=total, links=links)


class MessageEventsView(ApiView):
    """``GET /api/v1/message-events``: SparkPost's older page-paged search."""

    grants = EVENTS_GRANTS

    def get(self, request):
        query = _parsed(search.parse_message_events, request)
        rows, total, _more = selectors.events_search(query=query)
        last = max(1, -(-total // query.per_page))
        links = []
        for rel, page in (("first", 1), ("previous", query.page - 1), ("next", query.page + 1), ("last", last)):
            if 1 <= page <= last and (rel in ("first", "last") or page != query.page):
                params = request.query_params.copy()
                params["page"] = str(page)
                links.append({"href": f"/api/v1/message-events?{params.urlencode()}", "rel": rel})
        return results([event_flat(row, tz=query.tz) for row in rows], total_count=total, links=links)
