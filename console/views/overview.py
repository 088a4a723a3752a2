"""The front door (issue 15, Deliver 1): ``/`` for a signed-in staff user (others are sent to
the admin's sign-in page, titled Engage, and come back here).

It shows the figures of the last 24 whole hours (the current one included, :func:`last_day_window`), read by ``analytics.selectors.metrics_summary`` exactly
as ``GET /api/v1/metrics/deliverability`` reads them (the page names the equivalent API
query, and says how many of them are the template editor's test sends), the newest transmissions, and a link to every console page (``console.pages``). Until a
transmission other than a test send exists, a box lists the first steps, each marked once done
(``console.selectors.getting_started``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from analytics import selectors as analytics_selectors
from analytics.figures import figure_rows, figures
from analytics.metrics import parse_metrics_query
from console.pages import pages_for
from console.selectors import getting_started
from mailcore.ids import TEST_SEND_CAMPAIGN
from transmissions import selectors as transmission_selectors

#: (metric, label, the metric it is a rate of, or ""), in the order shown: the report's
#: labels and rates (``analytics.figures``), so one figure reads the same on both pages.
FIGURES = figure_rows(
    (
        "count_targeted",
        "count_injected",
        "count_accepted",
        "count_bounce",
        "count_delayed",
        "count_generation_failed",
        "count_unique_confirmed_opened",
        "count_unique_clicked",
    )
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


def window_title(start: datetime, now: datetime) -> str:
    """What the overview's figures cover, in words that stay true: ``"Since 06:00 UTC
    yesterday"`` (``"today"`` when the window starts at midnight today). Whole hours, not a
    rolling 24 hours as the message search's default: :func:`last_day_window`."""
    start, now = start.astimezone(UTC), now.astimezone(UTC)
    return f"Since {start:%H:%M} UTC {'today' if start.date() == now.date() else 'yesterday'}"


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    start, end = last_day_window(now)
    params = {
        "from": start.strftime(_API_TIME),
        "to": end.strftime(_API_TIME),
        "metrics": ",".join(dict.fromkeys(name for row in FIGURES for name in row[::2] if name)),
    }
    query = parse_metrics_query(params, now=end)
    totals = analytics_selectors.metrics_summary(query=query)
    figures_shown = figures(FIGURES, totals)
    recent = transmission_selectors.transmission_recent(limit=RECENT_TRANSMISSIONS)
    context = {
        "start": start,
        "title": window_title(start, now),
        "end": end,
        "api_from": params["from"],
        "api_to": params["to"],
        "api_query": "/api/v1/metrics/deliverability?" + urlencode(params, safe=",:"),
        "figures": figures_shown,
        "test_sends": analytics_selectors.metrics_test_sends(query=query),
        "test_send_campaign": TEST_SEND_CAMPAIGN,
        "transmissions": recent,
        "pages": pages_for(request.user),
        "started": getting_started(recent_campaigns=[row["campaign_id"] for row in recent]),
    }
    return render(request, "console/overview.html", context)
