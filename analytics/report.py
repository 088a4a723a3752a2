"""The engagement report: a staff-only Django page that reads the same selectors as the
metrics API."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from analytics import selectors
from analytics.figures import DELIVERABILITY, ENGAGEMENT, figure_rows
from analytics.figures import figures as _figures
from analytics.metrics import ParamError, parse_metrics_query
from engage import errors
from mailcore.ids import TEST_SEND_CAMPAIGN, smtp_template_transmission
from mailcore.links import RAW_URL

#: The report's figures (``analytics.figures``): every figure is ``selectors.metrics_summary``
#: over one query, as the metrics API computes it (``analytics.metrics.METRICS``), so the page
#: and ``GET /api/v1/metrics/deliverability`` with the same window and filters show the same
#: numbers.
#: Every metric the page reads: the figures and the bases of their rates.
REPORT_METRICS = tuple(dict.fromkeys(name for row in (*DELIVERABILITY, *ENGAGEMENT) for name in row[::2] if name))
#: How each chart line is drawn: (metric, colour, line width in px, dash pattern in px, [] solid).
#: uPlot draws the series in this order, each over the ones before: the wide unique-opens line
#: goes under the thin dashed unique-clicks line, so where the two counts are equal both stay
#: visible (found by a newcomer: the opens line was hidden under the clicks line).
_CHART_LINES: tuple[tuple[str, str, int, list[int]], ...] = (
    ("count_accepted", "#2f9e44", 2, []),
    ("count_unique_confirmed_opened", "#1c7ed6", 5, []),
    ("count_unique_clicked", "#e8590c", 2, [8, 4]),
    ("count_clicked", "#7048e8", 2, [2, 3]),
    ("count_bounce", "#c92a2a", 2, []),
)
#: The chart's series: (metric, legend label, colour). The label is the figure card's
#: (``analytics.figures``), so the legend and the cards name a metric with the same words.
CHART_SERIES: tuple[tuple[str, str, str], ...] = tuple(
    (metric, label, color)
    for (metric, label, _base), (_metric, color, _width, _dash) in zip(
        figure_rows(tuple(line[0] for line in _CHART_LINES)), _CHART_LINES, strict=True
    )
)
_DAY = re.compile(r"\d{4}-\d\d-\d\d")
_MAX_TEXT = 200  # the longest filter value the page echoes or queries with


def _day(raw: str, name: str) -> date:
    """A ``YYYY-MM-DD`` query value. Errors: ParamError naming ``name``."""
    if not _DAY.fullmatch(raw):
        raise ParamError(f"'{name}' must be a date like 2024-05-01, got '{raw[:64]}'")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ParamError(f"'{name}' is not a date of the calendar: '{raw[:64]}'") from None


def _precision(days: int) -> str:
    """The chart's bucket for a window of ``days`` whole days: every bucket is shown."""
    return "hour" if days <= 2 else "day" if days <= 120 else "week" if days <= 1500 else "month"


def _chart_data(series: list[dict[str, Any]], *, tz: str, precision: str) -> dict[str, Any]:
    """What the chart script reads (``json_script``): ``{"x": [Unix seconds of each bucket],
    "series": [{"label", "color", "width" (px), "dash" ([px], [] solid), "values": [int per
    bucket]}], "tz", "precision"}``."""
    return {
        "x": [int(datetime.fromisoformat(row["ts"]).timestamp()) for row in series],
        "series": [
            {"label": label, "color": color, "width": width, "dash": dash, "values": [row[metric] for row in series]}
            for (metric, label, color), (_metric, _color, width, dash) in zip(CHART_SERIES, _CHART_LINES, strict=True)
        ],
        "tz": tz,
        "precision": precision,
    }


def link_label(row: dict[str, Any]) -> str:
    """How a link row is named: its link name, else ``Raw URL``, the name the events API,
    the timelines and the link check give a link without one (``mailcore.links.RAW_URL``).
    Rows of one name are told apart by their URL as written and their position."""
    name = row["link_name"]
    return name if name and name != row["link_url"] else RAW_URL


def _template_note(template_id: str) -> str:
    """What the template filter's suggestion says beside a template id: SMTP injections'
    events carry ``smtp_<transmission id>`` (SMTP-INJECTION.md §1.7), inline content ``inline``."""
    if template_id == "inline":
        return "inline content"
    smtp_id = smtp_template_transmission(template_id)
    return f"SMTP injection, transmission {smtp_id}" if smtp_id is not None else ""


#: Ids each filter's suggestion list offers (the first, in order): 100,000 campaigns with data
#: made the page 7.3 MB (an attacker's finding).
MAX_SUGGESTIONS = 500


def unmatched_filter(kind: str, values: tuple[str, ...], present: list[str], known: list[str]) -> str:
    """What the page says when a filter names ids that have no data in the window (the metrics
    API's filters are exact, as SparkPost's: a partial id counts nothing): ``""`` when every
    value is ``present`` (has data); else which are not (each once), and the ``known`` ids
    (the suggestions) that contain one of them."""
    unknown = [value for value in dict.fromkeys(values) if value not in present]
    if not unknown:
        return ""
    quoted = ", ".join(f"'{value}'" for value in unknown[:5])
    said = f"No {kind} {quoted} has data in this period: the {kind} filter takes exact ids"
    near = [k for k in known if any(value.lower() in k.lower() for value in unknown)][:10]
    return f"{said}. Did you mean {', '.join(near)}?" if near else f"{said} (the suggestions list the known ones)."


def _present(window: Any, key: str, values: tuple[str, ...], suggested: list[str]) -> list[str]:
    """Which of a filter's ``values`` have data in the ``window``: read off the ``suggested``
    ids when that list is whole (under :data:`MAX_SUGGESTIONS`), else one query for them."""
    if not values or len(suggested) < MAX_SUGGESTIONS:
        return suggested
    field = {"campaign_id": "campaigns", "template_id": "templates"}[key]
    narrowed = dataclasses.replace(window, limit=None, **{field: values})
    return selectors.metrics_values(query=narrowed, key=key)


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def report(request: HttpRequest) -> HttpResponse:
    """The engagement and deliverability report (staff only). Query: ``from`` and ``to``
    (days, ``YYYY-MM-DD``, default the last 7 days), ``campaign``, ``template``,
    ``timezone`` (IANA, default UTC). A value it cannot read is the page with the reason,
    400. Figures: ``selectors.metrics_summary`` (:data:`DELIVERABILITY`,
    :data:`ENGAGEMENT`); chart: ``selectors.metrics_time_series`` (:data:`CHART_SERIES`,
    every bucket of the window); links: ``selectors.metrics_links``. The filters' suggestions
    are the campaign and template ids with data in the window (whatever the filters; the
    first :data:`MAX_SUGGESTIONS` of each); a filter value with no data there is said
    (:func:`unmatched_filter`), and so are the template editor's test sends among the
    figures (``selectors.metrics_test_sends``)."""
    now = timezone.now()
    today = now.date()
    get = {key: request.GET.get(key, "")[:_MAX_TEXT] for key in ("from", "to", "campaign", "template", "timezone")}
    start_raw = get["from"] or str(today - timedelta(days=6))
    end_raw = get["to"] or str(today)
    context: dict[str, Any] = {"start": start_raw, "end": end_raw, "campaign": get["campaign"],
                               "template": get["template"], "timezone": get["timezone"] or "UTC", "error": ""}  # fmt: skip
    try:
        start_day, end_day = _day(start_raw, "from"), _day(end_raw, "to")
        if end_day < start_day:
            raise ParamError("'to' must not be before 'from'")
        if end_day == date.max:
            raise ParamError("'to' must lie before 9999-12-30")
        params = {
            "from": f"{start_day.isoformat()}T00:00",
            "to": f"{(end_day + timedelta(days=1)).isoformat()}T00:00",
            "metrics": ",".join(REPORT_METRICS),
            "campaigns": get["campaign"],
            "templates": get["template"],
            "timezone": get["timezone"] or "UTC",
        }
        query = parse_metrics_query(params, now=now)
        precision = _precision((end_day - start_day).days + 1)
        series_query = parse_metrics_query(
            {**params, "metrics": ",".join(m for m, _, _ in CHART_SERIES), "precision": precision},
            now=now,
            time_series=True,
        )
        series = selectors.metrics_time_series(query=series_query)
    except (ParamError, errors.EngageError) as exc:
        context["error"] = str(exc)
        return render(request, "analytics/report.html", context, status=400)
    totals = selectors.metrics_summary(query=query)
    window = dataclasses.replace(query, campaigns=(), templates=(), domains=(), limit=MAX_SUGGESTIONS)
    campaigns = selectors.metrics_values(query=window, key="campaign_id")
    templates = selectors.metrics_values(query=window, key="template_id")
    campaigns_present = _present(window, "campaign_id", query.campaigns, campaigns)
    templates_present = _present(window, "template_id", query.templates, templates)
    context.update(
        totals=totals,
        deliverability=_figures(DELIVERABILITY, totals),
        engagement=_figures(ENGAGEMENT, totals),
        precision=precision,
        chart=_chart_data(series, tz=query.tz.key, precision=precision),
        links=[{**row, "label": link_label(row)} for row in selectors.metrics_links(query=query)],
        campaigns=campaigns,
        templates=[(t, _template_note(t)) for t in templates],
        unmatched=[
            said
            for said in (
                unmatched_filter("campaign", query.campaigns, campaigns_present, campaigns),
                unmatched_filter("template", query.templates, templates_present, templates),
            )
            if said
        ],
        test_sends=selectors.metrics_test_sends(query=query),
        test_send_campaign=TEST_SEND_CAMPAIGN,
    )
    return render(request, "analytics/report.html", context)
