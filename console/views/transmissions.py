"""Transmissions (issue 15, Deliver 4): ``/transmissions/`` (the list),
``/transmissions/<id>/`` (one, with its events per type) and ``/transmissions/<id>/cancel/``
(POST: cancel a scheduled one with the service of ``DELETE /api/v1/transmissions/{id}``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST, require_safe

from console.queries import (
    TRANSMISSIONS_PER_PAGE,
    TransmissionFilter,
    minute,
    pager_links,
    transmission_filter,
)
from console.queries import transmission_id as transmission_id_parse
from console.selectors import transmission_summary
from console.views.permissions import CANCEL, permission_page
from engage import errors
from engage.errors import EngageError
from mailcore.ids import smtp_template_id
from transmissions.models import TransmissionState
from transmissions.selectors import transmission_page
from transmissions.services import transmission_cancel

#: Seconds between two reloads of a page that shows a transmission still in progress.
REFRESH_SECONDS = 3
# A scheduled transmission this close to its start is about to generate: its page reloads.
_SOON = timedelta(seconds=60)
#: After its generation ended, a transmission's page keeps reloading until its events have
#: landed (they follow the state by seconds: the relay answers, the outbox is drained), for
#: at most this long.
CATCH_UP = timedelta(minutes=5)
# The events that end each targeted message's generation: its injection, or the bounce,
# failure or rejection that stopped it. A bounce after an injection is counted twice, so
# ``landed`` can only reach the number of recipients early, never late (then CATCH_UP ends it).
_LANDING = ("injection", "bounce", "generation_failure", "generation_rejection", "policy_rejection")


def _in_progress(state: str, start_time: datetime | None) -> bool:
    """Generating, or scheduled to start within a minute: its page reloads to show progress."""
    if state == TransmissionState.GENERATING:
        return True
    return state == TransmissionState.SUBMITTED and (start_time is None or start_time <= timezone.now() + _SOON)


def _catching_up(tx: dict[str, Any], counts: dict[str, int]) -> bool:
    """Generation ended (any final state) less than :data:`CATCH_UP` ago, and the events of
    its messages have not all landed: its events summary is still growing."""
    ended = tx["generation_end_time"]
    if not tx["generation_start_time"] or not ended:
        return False
    if timezone.now() - datetime.fromisoformat(ended) > CATCH_UP:
        return False
    return sum(counts.get(kind, 0) for kind in _LANDING) < tx["num_rcpts"]


def duration(seconds: int) -> str:
    """``600`` → ``"10 minutes"``, ``3600`` → ``"1 hour"``, ``90`` → ``"90 seconds"``."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


#: The longest part of an unknown transmission id the 404 page repeats.
SHOWN_ID_CHARS = 40


def no_transmission(request: HttpRequest, raw: str) -> HttpResponse:
    """404: "No transmission <id>", with a link to the list (``raw`` as typed, cut short)."""
    shown = raw if len(raw) <= SHOWN_ID_CHARS else raw[:SHOWN_ID_CHARS] + "…"
    return render(request, "console/transmission_missing.html", {"shown": shown}, status=404)


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def transmission_list(request: HttpRequest) -> HttpResponse:
    rows: list[dict[str, Any]] = []
    more, error, chosen = False, "", TransmissionFilter()
    try:
        chosen = transmission_filter(request.GET)
        rows, more = transmission_page(
            campaign_id=chosen.campaign,
            template_id=chosen.template,
            state=chosen.state,
            before=chosen.before,
            limit=TRANSMISSIONS_PER_PAGE,
        )
    except EngageError as exc:
        error = f"{exc.message}: {exc.description}"
    kept = {name: request.GET.get(name, "") for name in ("campaign", "template", "state") if request.GET.get(name)}
    context = {
        "rows": rows,
        "error": error,
        "states": TransmissionState.choices,
        "params": kept,
        "pager": pager_links(
            kept,
            name="before",
            current=str(chosen.before) if chosen.before is not None else "",
            back=chosen.back,
            following=rows[-1]["id"] if more and rows else None,
        ),
        "refresh": REFRESH_SECONDS if any(_in_progress(r["state"], r["start_time"]) for r in rows) else 0,
    }
    return render(request, "console/transmissions.html", context, status=400 if error else 200)


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def transmission_detail(request: HttpRequest, transmission_id: str) -> HttpResponse:
    """One transmission; an unknown or malformed id is :func:`no_transmission` (404). The
    cancel button shows only to a user who may cancel (``console.views.permissions.CANCEL``)."""
    pk = transmission_id_parse(transmission_id)
    if pk is None:
        return no_transmission(request, transmission_id)
    try:
        summary = transmission_summary(transmission_id=pk)
    except errors.NotFound:
        return no_transmission(request, transmission_id)
    tx = summary["transmission"]
    search = {"transmissions": tx["id"]}
    if tx["generation_start_time"]:  # its events start then; the search's default window is a day
        search["from"] = minute(datetime.fromisoformat(tx["generation_start_time"]) - timedelta(minutes=1))
    start_time = datetime.fromisoformat(tx["start_time"]) if tx["start_time"] else None
    window = settings.ENGAGE_SCHEDULED_DELETE_WINDOW
    scheduled = tx["state"] == TransmissionState.SUBMITTED
    # As transmission_cancel decides: only while its start is at least the window away.
    cancelable = scheduled and start_time is not None and start_time - timezone.now() >= timedelta(seconds=window)
    catching_up = _catching_up(tx, {kind: count for kind, _label, count in summary["events"]})
    context = {
        **summary,
        "tx": tx,
        "template_id": summary["template_id"],
        "smtp": summary["template_id"] == smtp_template_id(tx["id"]),
        "messages_url": "/messages/?" + urlencode(search),
        "cancelable": cancelable,
        "may_cancel": request.user.has_perm(CANCEL),
        # Only a start still ahead is "too close": a send-now one (or one past its start) has
        # nothing to say about canceling.
        "too_close": scheduled and not cancelable and start_time is not None and start_time > timezone.now(),
        "window": duration(window),
        "start_time": start_time,
        "catching_up": catching_up,
        "refresh": REFRESH_SECONDS if catching_up or _in_progress(tx["state"], start_time) else 0,
    }
    return render(request, "console/transmission.html", context)


@require_POST
@staff_member_required
@permission_page(CANCEL)
def transmission_cancel_view(request: HttpRequest, transmission_id: str) -> HttpResponse:
    """Cancel with ``transmissions.services.transmission_cancel`` (SPEC B §1.8): its error
    (not scheduled, too close to its start) is shown on the transmission's page. Needs the
    permission to change transmissions (``console.views.permissions.CANCEL``, else 403)."""
    pk = transmission_id_parse(transmission_id)
    if pk is None:
        return no_transmission(request, transmission_id)
    try:
        transmission_cancel(transmission_id=pk)
    except errors.NotFound:
        return no_transmission(request, transmission_id)
    except EngageError as exc:
        messages.error(request, f"Not canceled: {exc.message} ({exc.code}): {exc.description}")
    else:
        messages.success(request, f"Transmission {pk} is canceled.")
    return HttpResponseRedirect(f"/transmissions/{pk}/", status=303)
