"""PURE: the parameters of the events search APIs (SPEC B §6.4) as an ``EventQuery``.

``/api/v1/events/message`` (cursor paging) and ``/api/v1/message-events`` (page paging,
older parameter names) are parsed into the same query, answered by one selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from analytics.metrics import EARLIEST, LATEST, ParamError, parse_time, parse_timezone, split_list
from mailcore.cursors import cursor_decode as mailcore_cursor_decode
from mailcore.events import NAMES

# filter -> (column, how it matches): "eq" exact, "lower" exact lower-cased, "like" substring
FILTERS = {
    "events": ("type", "eq"),
    "recipients": ("rcpt_to", "lower"),
    "recipient_domains": ("recipient_domain", "lower"),
    "campaigns": ("campaign_id", "eq"),
    "templates": ("template_id", "eq"),
    "transmissions": ("transmission_id", "eq"),
    "messages": ("message_id", "eq"),
    "subjects": ("subject", "like"),
    "bounce_classes": ("bounce_class", "eq"),
    "reasons": ("reason", "like"),
    "event_ids": ("event_id", "eq"),
    "from_addresses": ("friendly_from", "like"),
}
#: Different values a substring filter (``subjects``, ``reasons``, ``from_addresses``) may
#: hold: each row is matched against every one (``ILIKE ANY``), so 1,000 of them ran a
#: search into the statement timeout (30 s of database CPU a request; an attacker's finding).
MAX_SUBSTRING_VALUES = 100
UNSUPPORTED = (
    "sending_domains", "sending_ips", "ip_pools", "subaccounts", "mailbox_providers",
    "mailbox_provider_regions", "ab_tests", "ab_test_versions",
)  # fmt: skip
# /message-events names -> /events/message names
LEGACY = {
    "campaign_ids": "campaigns", "events": "events", "message_ids": "messages", "recipients": "recipients",
    "template_ids": "templates", "transmission_ids": "transmissions", "bounce_classes": "bounce_classes",
    "friendly_froms": "from_addresses",
}  # fmt: skip


@dataclass(frozen=True)
class EventQuery:
    start: datetime
    end: datetime
    per_page: int
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    after: tuple[datetime, int] | None = None  # keyset cursor: rows strictly older than this
    page: int = 1
    tz: tzinfo = UTC


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(f"'{name}' must be an integer, got '{raw}'") from None
    if not low <= value <= high:
        raise ParamError(f"'{name}' must be between {low} and {high}")
    return value


def _filters(params: dict[str, str], names: dict[str, str], delimiter: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for param, name in names.items():
        values = split_list(params.get(param), delimiter)
        if not values:
            continue
        if name == "events":
            unknown = [v for v in values if v not in NAMES]
            if unknown:
                shown = ", ".join(v[:64] for v in unknown[:5])
                raise ParamError(f"'{param}': unknown event type(s): {shown}; known: {', '.join(NAMES)}")
        if name == "bounce_classes" and not all(v.isascii() and v.isdigit() for v in values):
            raise ParamError(f"'{param}' must be numeric bounce class codes")
        if FILTERS[name][1] == "lower":
            values = tuple(v.lower() for v in values)
        values = tuple(dict.fromkeys(values))  # each value once, in the order given
        if FILTERS[name][1] == "like" and len(values) > MAX_SUBSTRING_VALUES:
            raise ParamError(
                f"'{param}' matches by substring: at most {MAX_SUBSTRING_VALUES} different values, not {len(values)}"
            )
        out[name] = values
    return out


def cursor_decode(token: str) -> tuple[datetime, int]:
    """``(timestamp, id)`` of a cursor this API returned; ParamError (400) for anything else."""
    try:
        return mailcore_cursor_decode(token, earliest=EARLIEST, latest=LATEST)
    except ValueError:
        raise ParamError("'cursor' is not a cursor this API returned (use links.next as given)") from None


def _window(params: dict[str, str], tz: tzinfo, now: datetime, default_back: timedelta) -> tuple[datetime, datetime]:
    start = parse_time(params["from"], "from", tz) if params.get("from") else now - default_back
    end = parse_time(params["to"], "to", tz) if params.get("to") else now
    if end <= start:
        raise ParamError("'to' must be later than 'from'")
    return start, end


def _reject_unsupported(params: dict[str, str]) -> None:
    for name in UNSUPPORTED:
        if params.get(name):
            raise ParamError(f"'{name}': this filter is not supported by Engage")


def parse_events_message(params: dict[str, str], *, now: datetime) -> EventQuery:
    """``/api/v1/events/message``: ``from`` inclusive (default 24 h ago), ``to`` exclusive
    (default now), UTC unless an offset is given; cursor paging."""
    _reject_unsupported(params)
    start, end = _window(params, UTC, now, timedelta(hours=24))
    delimiter = params.get("delimiter") or ","
    token = params.get("cursor") or "initial"
    return EventQuery(
        start=start,
        end=end,
        per_page=_int(params, "per_page", 1000, 1, 10000),
        filters=_filters(params, {name: name for name in FILTERS}, delimiter),
        after=None if token == "initial" else cursor_decode(token),
    )


def parse_message_events(params: dict[str, str], *, now: datetime) -> EventQuery:
    """``/api/v1/message-events``: SparkPost's older names, ``timezone`` for parsing and
    for the timestamps shown, ``from`` default 1 hour ago, page paging."""
    _reject_unsupported(params)
    tz = parse_timezone(params.get("timezone"))
    start, end = _window(params, tz, now, timedelta(hours=1))
    delimiter = params.get("delimiter") or ","
    filters = _filters(params, LEGACY, delimiter)
    if params.get("reason"):
        filters["reasons"] = (params["reason"].strip("%"),)
    return EventQuery(
        start=start,
        end=end,
        per_page=_int(params, "per_page", 1000, 1, 10000),
        filters=filters,
        page=_int(params, "page", 1, 1, 2**31 - 1),
        tz=tz,
    )
