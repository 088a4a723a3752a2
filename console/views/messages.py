"""The message search (issue 15, Deliver 3): ``/messages/``, "did my email arrive?".

The query string is the events API's (``GET /api/v1/events/message``: ``recipients``,
``campaigns``, ``transmissions``, ``templates``, ``events``, ``from``, ``to``, ``cursor``, ...;
``console.queries.message_query``); a filter the API refuses shows the API's error (400).
``back`` (``console.queries.back_parse``) holds the cursors of the pages before, for
"Previous page": the API gives only the next page's cursor.
Answered by ``console.selectors.message_timelines``: one timeline per message. Recipients are
matched as whole addresses, as the API matches them (case aside); a search that finds nothing
names the recipients typed without an ``@``, which can match nothing.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from console.queries import Back, back_parse, is_cursor, message_links, message_query, query_dict
from console.selectors import message_timelines
from engage.errors import EngageError
from mailcore.events import NAMES

#: How the form's from and to placeholders write a minute (the search reads it as UTC).
FORM_MINUTE = "%Y-%m-%dT%H:%M"


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def messages(request: HttpRequest) -> HttpResponse:
    params = query_dict(request.GET)
    now = timezone.now()
    page, error, back = None, "", Back()
    try:
        back = back_parse(params.get("back", ""), valid=is_cursor)
        page = message_timelines(query=message_query(params, now=now))
    except EngageError as exc:
        error = f"{exc.message}: {exc.description}" if exc.description else exc.message
    delimiter = params.get("delimiter") or ","
    typed = [item.strip() for item in params.get("recipients", "").split(delimiter) if item.strip()]
    context = {
        "params": params,
        "partial_recipients": [item for item in typed if "@" not in item][:5],
        "chosen_events": set(params.get("events", "").split(params.get("delimiter") or ",")),
        "event_types": NAMES,
        "page": page,
        "error": error,
        # The defaults the search uses when from and to are left empty, as examples of the format.
        "default_from": (now - timedelta(hours=24)).astimezone(UTC).strftime(FORM_MINUTE),
        "default_to": now.astimezone(UTC).strftime(FORM_MINUTE),
        "links": message_links(params, now=now, back=back, next_cursor=page.next_cursor if page else None),
    }
    return render(request, "console/messages.html", context, status=400 if error else 200)
