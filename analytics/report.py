"""The engagement report: a staff-only Django page that reads the same selectors as the
metrics API."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from analytics import selectors
from analytics.metrics import ParamError, parse_metrics_query

REPORT_METRICS = (
    "count_targeted", "count_accepted", "count_unique_confirmed_opened", "count_unique_clicked", "count_clicked",
)  # fmt: skip
CHART_METRICS = ("count_rendered", "count_clicked")


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def chart_svg(series: list[dict[str, Any]], width: int = 720, height: int = 220) -> dict[str, Any]:
    """Polylines (SVG points) for opens and clicks over the buckets, scaled to the box."""
    peak = max([1] + [row[m] for row in series for m in CHART_METRICS])
    step = width / max(len(series) - 1, 1)
    lines = {}
    for metric in CHART_METRICS:
        lines[metric] = " ".join(
            f"{i * step:.1f},{height - (row[metric] / peak) * (height - 10):.1f}" for i, row in enumerate(series)
        )
    return {"width": width, "height": height, "peak": peak, "lines": lines, "first": series[0]["ts"] if series else "",
            "last": series[-1]["ts"] if series else ""}  # fmt: skip


@staff_member_required
def report(request: HttpRequest) -> HttpResponse:
    today = timezone.now().date()
    start_day = request.GET.get("from") or str(today - timedelta(days=6))
    end_day = request.GET.get("to") or str(today)
    params = {
        "from": f"{start_day}T00:00",
        "to": f"{(date.fromisoformat(end_day) + timedelta(days=1)).isoformat()}T00:00"
        if re.fullmatch(r"\d{4}-\d\d-\d\d", end_day)
        else end_day,
        "metrics": ",".join(REPORT_METRICS),
        "campaigns": request.GET.get("campaign", ""),
        "templates": request.GET.get("template", ""),
        "timezone": request.GET.get("timezone", "UTC"),
    }
    context: dict[str, Any] = {"start": start_day, "end": end_day, "campaign": params["campaigns"],
                               "template": params["templates"], "error": ""}  # fmt: skip
    try:
        query = parse_metrics_query(params, now=timezone.now())
    except (ParamError, ValueError) as exc:
        context["error"] = str(exc)
        return render(request, "analytics/report.html", context, status=400)
    totals = selectors.metrics_summary(query=query)
    precision = "hour" if query.end - query.start <= timedelta(days=2) else "day"
    series_query = parse_metrics_query(
        {**params, "metrics": ",".join(CHART_METRICS), "precision": precision}, now=timezone.now()
    )
    series = selectors.metrics_time_series(query=series_query)
    accepted = totals["count_accepted"]
    context.update(
        totals=totals,
        rates={
            "accepted": _rate(accepted, totals["count_targeted"]),
            "opened": _rate(totals["count_unique_confirmed_opened"], accepted),
            "clicked": _rate(totals["count_unique_clicked"], accepted),
            "click_to_open": _rate(totals["count_unique_clicked"], totals["count_unique_confirmed_opened"]),
        },
        series=series,
        precision=precision,
        chart=chart_svg(series),
        links=selectors.metrics_links(query=query),
        campaigns=selectors.metrics_values(query=query, key="campaign_id"),
        templates=selectors.metrics_values(query=query, key="template_id"),
    )
    return render(request, "analytics/report.html", context)
