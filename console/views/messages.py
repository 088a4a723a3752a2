"""The message search (issue 15, Deliver 3): ``/messages/``, "did my email arrive?".

The query string is the events API's (``GET /api/v1/events/message``: ``recipients``,
``campaigns``, ``transmissions``, ``templates``, ``events``, ``from``, ``to``, ``cursor``, ...;
``console.queries.message_query``); a filter the API refuses shows the API's error (400).
Answered by ``console.selectors.message_timelines``: one timeline per message.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from console.queries import message_query, query_dict
from console.selectors import message_timelines, window_start
from engage.errors import EngageError
from mailcore.events import RECORDED

# The quick windows offered beside the form: label -> how far back ``from`` goes.
_WINDOWS = (("24 hours", timedelta(hours=24)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)))


@staff_member_required
def messages(request: HttpRequest) -> HttpResponse:
    params = query_dict(request.GET)
    now = timezone.now()
    page, error = None, ""
    try:
        page = message_timelines(query=message_query(params, now=now))
    except EngageError as exc:
        error = f"{exc.message}: {exc.description}" if exc.description else exc.message
    kept = {name: value for name, value in params.items() if name != "cursor"}
    windows = [
        (
            name,
            "?"
            + urlencode(
                {**{k: v for k, v in kept.items() if k not in ("from", "to")}, "from": window_start(now - back)}
            ),
        )
        for name, back in _WINDOWS
    ]
    context = {
        "params": params,
        "chosen_events": set(params.get("events", "").split(params.get("delimiter") or ",")),
        "event_types": RECORDED,
        "page": page,
        "error": error,
        "windows": windows,
        "first_url": "?" + urlencode(kept) if params.get("cursor") else "",
        "next_url": "?" + urlencode({**kept, "cursor": page.next_cursor}) if page and page.next_cursor else "",
    }
    return render(request, "console/messages.html", context, status=400 if error else 200)
