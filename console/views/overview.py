"""The front door (issue 15, Deliver 1): ``/`` for a signed-in staff user (others are sent to
the admin's sign-in page, titled Engage, and come back here).

It shows the last 24 hours' figures, read by ``analytics.selectors.metrics_summary`` exactly
as ``GET /api/v1/metrics/deliverability`` reads them (the page names the equivalent API
query), the newest transmissions, and a link to every console page (``console.pages``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from analytics import selectors as analytics_selectors
from analytics.metrics import parse_metrics_query
from console.pages import PAGES
from transmissions import selectors as transmission_selectors

#: (metric, label, the metric it is a rate of, or None), in the order shown.
FIGURES: tuple[tuple[str, str, str | None], ...] = (
    ("count_targeted", "Targeted", None),
    ("count_injected", "Injected", "count_targeted"),
    ("count_delivered", "Delivered", "count_injected"),
    ("count_bounce", "Bounced", "count_injected"),
    ("count_delayed", "Delayed (attempts)", None),
    ("count_generation_failed", "Generation failures", "count_targeted"),
    ("count_unique_confirmed_opened", "Unique opens", "count_delivered"),
    ("count_unique_clicked", "Unique clicks", "count_delivered"),
)
WINDOW = timedelta(hours=24)
RECENT_TRANSMISSIONS = 10
_API_TIME = "%Y-%m-%dT%H:%M"


def last_day_window(now: datetime) -> tuple[datetime, datetime]:
    """The window the overview counts, in UTC: exactly ``WINDOW`` (24 whole hours, as the
    rollups count whole hours: ``analytics.metrics``) ending with the end of ``now``'s hour,
    so ``now`` is inside it (``start <= now < end``). ``now`` is aware."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - WINDOW, end


def rate(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole`` with one decimal (``"12.5%"``), ``""`` when
    ``whole`` is 0."""
    return f"{100 * part / whole:.1f}%" if whole else ""


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    start, end = last_day_window(timezone.now())
    params = {
        "from": start.strftime(_API_TIME),
        "to": end.strftime(_API_TIME),
        "metrics": ",".join(metric for metric, _label, _of in FIGURES),
    }
    totals = analytics_selectors.metrics_summary(query=parse_metrics_query(params, now=end))
    labels = {metric: label for metric, label, _of in FIGURES}
    figures: list[dict[str, Any]] = [
        {
            "metric": metric,
            "label": label,
            "value": totals[metric],
            "rate": rate(totals[metric], totals[of]) if of else "",
            "of": labels[of].lower() if of else "",
        }
        for metric, label, of in FIGURES
    ]
    context = {
        "start": start,
        "end": end,
        "api_from": params["from"],
        "api_to": params["to"],
        "api_query": "/api/v1/metrics/deliverability?" + urlencode(params, safe=",:"),
        "figures": figures,
        "transmissions": transmission_selectors.transmission_recent(limit=RECENT_TRANSMISSIONS),
        "pages": PAGES,
    }
    return render(request, "console/overview.html", context)
