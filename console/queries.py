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
from collections.abc import Callable
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
from mailcore.cursors import cursor_decode
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


#: How far "Previous page" steps back: the console's keyset-paged lists (messages,
#: transmissions) carry in ``back`` the cursors of the pages before the one shown, oldest
#: first, at most this many (a query string stays well under gunicorn's 8190-byte request line).
MAX_BACK = 50
# ``back``'s separator (a cursor is URL-safe base64, an id digits: neither holds a "."), and its
# first entry (neither a cursor nor an id) when older cursors were dropped past MAX_BACK.
_BACK_SEP, _FORGOTTEN = ".", "-"


@dataclass(frozen=True)
class Back:
    """The pages before the one shown: their ``cursors``, oldest first (the first page, which
    has none, is not among them), and whether older ones were ``forgotten`` (dropped past
    :data:`MAX_BACK`: going back past the oldest kept offers only the first page)."""

    cursors: tuple[str, ...] = ()
    forgotten: bool = False

    def param(self) -> dict[str, str]:
        """``{"back": ...}`` for a query string, ``{}`` when there is nothing to carry."""
        entries = ((_FORGOTTEN,) if self.forgotten else ()) + self.cursors
        return {"back": _BACK_SEP.join(entries)} if entries else {}


def back_parse(raw: str, *, valid: Callable[[str], bool]) -> Back:
    """:class:`Back` from the ``back`` parameter (``""`` when absent): ``.``-separated cursors,
    each accepted by ``valid``, at most :data:`MAX_BACK`, optionally after a ``-``.

    Errors: ``engage.errors.InvalidParams`` naming ``back`` for anything else."""
    entries = raw.split(_BACK_SEP) if raw else []
    forgotten = bool(entries) and entries[0] == _FORGOTTEN
    cursors = tuple(entries[1:] if forgotten else entries)
    if len(cursors) > MAX_BACK or not all(valid(cursor) for cursor in cursors):
        raise errors.InvalidParams("'back' must be the cursors of this list's earlier pages")
    return Back(cursors=cursors, forgotten=forgotten)


def pager_links(kept: dict[str, str], *, name: str, current: str, back: Back, following: str | None) -> dict[str, str]:
    """The pager of a keyset-paged list: ``{"first", "previous", "next"}``, each ``"?..."``
    keeping ``kept`` (the list's filters) or ``""`` when not offered. ``name`` is the cursor's
    parameter (``cursor``, ``before``), ``current`` this page's cursor (``""`` on the first
    page), ``back`` the pages before it, ``following`` the cursor after it (None on the last).

    ``first``: offered off the first page. ``previous``: the newest cursor in ``back`` with
    the rest of ``back``, or the first page when ``back`` is empty (not offered when older
    pages were forgotten). ``next``: ``following``, with this page's cursor pushed on ``back``
    (the oldest dropped past :data:`MAX_BACK`)."""
    first = "?" + urlencode(kept) if current else ""
    previous = ""
    if current and back.cursors:
        rest = Back(cursors=back.cursors[:-1], forgotten=back.forgotten)
        previous = "?" + urlencode({**kept, name: back.cursors[-1], **rest.param()})
    elif current and not back.forgotten:
        previous = first
    following_ = ""
    if following:
        deeper = (*back.cursors, current) if current else ()
        pushed = Back(cursors=deeper[-MAX_BACK:], forgotten=back.forgotten or len(deeper) > MAX_BACK)
        following_ = "?" + urlencode({**kept, name: following, **pushed.param()})
    return {"first": first, "previous": previous, "next": following_}


def is_cursor(token: str) -> bool:
    """Whether ``token`` is a cursor of the events search (``mailcore.cursors``)."""
    try:
        cursor_decode(token)
    except ValueError:
        return False
    return True


#: The quick windows offered beside the message search's form: label -> how far back ``from`` goes.
WINDOWS = (("24 hours", timedelta(hours=24)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)))


def minute(value: datetime) -> str:
    """``value`` in UTC to the minute (``2024-05-01T08:00Z``), a ``from`` the search reads."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def message_links(params: dict[str, str], *, now: datetime, back: Back, next_cursor: str | None) -> dict[str, object]:
    """The message search's links, each keeping the filters of ``params``: ``windows``
    (``[(label, "?...")]``, ``WINDOWS`` back from ``now``, on their first page) and the
    pager's ``first``, ``previous`` and ``next`` (:func:`pager_links`; ``back`` is
    :func:`back_parse` of the ``back`` parameter, ``next_cursor`` the cursor after this page)."""
    kept = {name: value for name, value in params.items() if name not in ("cursor", "back")}
    filters = {name: value for name, value in kept.items() if name not in ("from", "to")}
    return {
        "windows": [(name, "?" + urlencode({**filters, "from": minute(now - back_)})) for name, back_ in WINDOWS],
        **pager_links(kept, name="cursor", current=params.get("cursor", ""), back=back, following=next_cursor),
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
    inline content), ``state`` (a ``TransmissionState`` value), ``before`` (the keyset:
    the last id of the previous page) and ``back`` (the ``before`` of the pages before it,
    :func:`back_parse`)."""

    campaign: str = ""
    template: str = ""
    state: str = ""
    before: int | None = None
    back: Back = Back()


def transmission_filter(params: QueryDict) -> TransmissionFilter:
    """The list's filters from the query string. Errors: ``engage.errors.InvalidParams``
    naming the parameter for a state that is none of ``TransmissionState``, a ``before``
    that is not a transmission id, a ``back`` that is not transmission ids (``back_parse``),
    or a campaign or template id longer than the API allows (64 characters)."""
    campaign, template = params.get("campaign", "").strip(), params.get("template", "").strip()
    state, before = params.get("state", ""), params.get("before", "")
    for name, value in (("campaign", campaign), ("template", template)):
        if len(value) > 64:
            raise errors.InvalidParams(f"'{name}' must be at most 64 characters")
    if state and state not in TransmissionState.values:
        raise errors.InvalidParams(f"'state' must be one of {', '.join(TransmissionState.values)}")
    if before and not transmission_id(before):
        raise errors.InvalidParams("'before' must be a transmission id")
    back = back_parse(params.get("back", ""), valid=lambda raw: transmission_id(raw) is not None)
    return TransmissionFilter(
        campaign=campaign, template=template, state=state, before=transmission_id(before), back=back
    )


def transmission_id(raw: str) -> int | None:
    """The transmission id ``raw`` names (ASCII digits below 2^63), else None."""
    if not _ID.fullmatch(raw) or int(raw) >= 1 << 63:
        return None
    return int(raw)
