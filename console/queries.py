"""The console's query strings, checked by the API's own declarations (issue 15).

The message search (``/messages/``) takes the parameters of ``GET /api/v1/events/message``
(SPEC B §6.4) under the same names, checked by the same schema
(``analytics.schemas.EventsMessageQuery``) and parsed by the same function
(``analytics.search.parse_events_message``), so a filter the API refuses is refused here
with the API's words, and other pages can link in (``/messages/?recipients=a@x&transmissions=1``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.http import QueryDict
from django.utils.http import urlencode

from analytics.metrics import ParamError
from analytics.schemas import EventsMessageQuery
from analytics.search import EventQuery, parse_events_message
from engage import errors
from engage.api.schema import parse_query
from transmissions.models import TransmissionState

#: Messages per page of the message search: ``per_page`` (default 20) counts messages there,
#: not events, and is capped here, so a page never holds more than this many timelines.
MESSAGES_PER_PAGE, MAX_MESSAGES_PER_PAGE = 20, 100
#: Transmissions per page of the console's list.
TRANSMISSIONS_PER_PAGE = 50
# A transmission id (ASCII digits that fit a PostgreSQL bigint), as the API reads one.
_ID = re.compile(r"[0-9]{1,19}")


def query_dict(params: QueryDict) -> dict[str, str]:
    """The query string as one value per name. A name given more than once (the message
    search's event-type checkboxes) has its values joined with ``delimiter`` (default ``,``),
    as the API's own delimited lists; empty values are dropped."""
    delimiter = params.get("delimiter") or ","
    out = {}
    for name in params:
        values = [value for value in params.getlist(name) if value != ""]
        if values:
            out[name] = values[-1] if name == "delimiter" else delimiter.join(values)
    return out


#: The quick windows offered beside the message search's form: label -> how far back ``from`` goes.
WINDOWS = (("24 hours", timedelta(hours=24)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)))


def minute(value: datetime) -> str:
    """``value`` in UTC to the minute (``2024-05-01T08:00Z``), a ``from`` the search reads."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def message_links(params: dict[str, str], *, now: datetime, next_cursor: str | None) -> dict[str, object]:
    """The message search's links, each keeping the filters of ``params``: ``windows``
    (``[(label, "?...")]``, ``WINDOWS`` back from ``now``), ``first`` (the first page, "" when
    on it) and ``next`` (the page after ``next_cursor``, "" on the last page)."""
    kept = {name: value for name, value in params.items() if name != "cursor"}
    filters = {name: value for name, value in kept.items() if name not in ("from", "to")}
    return {
        "windows": [(name, "?" + urlencode({**filters, "from": minute(now - back)})) for name, back in WINDOWS],
        "first": "?" + urlencode(kept) if params.get("cursor") else "",
        "next": "?" + urlencode({**kept, "cursor": next_cursor}) if next_cursor else "",
    }


def message_query(params: dict[str, str], *, now: datetime) -> EventQuery:
    """The message search's query from ``params`` (:func:`query_dict`): the events API's
    window (``from`` inclusive, default 24 h before ``now``; ``to`` exclusive, default
    ``now``; UTC unless an offset is given), filters and ``cursor``; ``per_page`` messages
    (default ``MESSAGES_PER_PAGE``, at most ``MAX_MESSAGES_PER_PAGE``).

    Errors: ``engage.errors.InvalidParams`` with the API's description for anything the
    API refuses (an unknown event type, a bad time, ``to`` before ``from``, a cursor it did
    not make, a filter Engage does not support)."""
    parse_query(SimpleNamespace(query_params=params), EventsMessageQuery)
    try:
        query = parse_events_message(params, now=now)
    except ParamError as exc:
        raise errors.InvalidParams(str(exc)) from None
    per_page = min(query.per_page, MAX_MESSAGES_PER_PAGE) if params.get("per_page") else MESSAGES_PER_PAGE
    return dataclasses.replace(query, per_page=per_page)


@dataclass(frozen=True)
class TransmissionFilter:
    """The console's transmission list filters: ``campaign``, ``template`` (``inline`` for
    inline content), ``state`` (a ``TransmissionState`` value) and ``before`` (the keyset:
    the last id of the previous page)."""

    campaign: str = ""
    template: str = ""
    state: str = ""
    before: int | None = None


def transmission_filter(params: QueryDict) -> TransmissionFilter:
    """The list's filters from the query string. Errors: ``engage.errors.InvalidParams``
    naming the parameter for a state that is none of ``TransmissionState``, a ``before``
    that is not a transmission id, or a campaign or template id longer than the API allows
    (64 characters)."""
    campaign, template = params.get("campaign", "").strip(), params.get("template", "").strip()
    state, before = params.get("state", ""), params.get("before", "")
    for name, value in (("campaign", campaign), ("template", template)):
        if len(value) > 64:
            raise errors.InvalidParams(f"'{name}' must be at most 64 characters")
    if state and state not in TransmissionState.values:
        raise errors.InvalidParams(f"'state' must be one of {', '.join(TransmissionState.values)}")
    if before and not transmission_id(before):
        raise errors.InvalidParams("'before' must be a transmission id")
    return TransmissionFilter(campaign=campaign, template=template, state=state, before=transmission_id(before))


def transmission_id(raw: str) -> int | None:
    """The transmission id ``raw`` names (ASCII digits below 2^63), else None."""
    if not _ID.fullmatch(raw) or int(raw) >= 1 << 63:
        return None
    return int(raw)
