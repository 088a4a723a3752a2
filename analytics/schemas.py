"""What the metrics (SPEC B §7) and event search (SPEC B §6.4) query strings may hold, and
what they answer, declared once for the check at the edge and the OpenAPI document
(``engage/api/schema.py``).

The names (metrics, precisions, event types) come from their owners, ``analytics.metrics``
and ``tracking.models``; the checks that need several parameters at once (``to`` after
``from``, ``order_by`` among the requested metrics, the window a precision allows, the
number of buckets of a time series, lists split by ``delimiter``) stay in the pure parsers
(``analytics.metrics.parse_metrics_query``, ``analytics.search``), which run after these.
A bad value is 400 / 1200 and a missing one 400 / 1401, naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from analytics.metrics import (
    LINK_METRICS,
    MAX_SERIES_BUCKETS,
    METRICS,
    NOT_COUNTED,
    PRECISIONS,
    ParamError,
    check_metric_names,
    check_order_by,
    check_precision,
)
from engage.api.schema import DateTimeText, Query, Text, TimeZone
from mailcore.events import NAMES, RECORDED

#: A delimited filter list (SPEC B §6.4 gives 4096 characters for the whole URI).
MAX_LIST_CHARS = 4096
MAX_DELIMITER_CHARS = 8
MAX_CURSOR_CHARS = 256
MAX_LIMIT = 10_000
MAX_PER_PAGE = 10_000
MAX_PAGE = 2**31 - 1


def _checked(check: Callable[[str], Any]) -> BeforeValidator:
    """Runs one of the pure parsers' checks first, so its message (naming the values it
    accepts) is the one the caller reads; the parameter's name leads it once."""

    def run(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            try:
                check(value)
            except ParamError as exc:
                name = info.field_name if info.field_name != "from_" else "from"
                message = str(exc).removeprefix(f"'{name}': ").removeprefix(f"'{name}' ")
                raise ValueError(message) from None
        return value

    return BeforeValidator(run)


def _name_list_pattern(names: Iterable[str]) -> str:
    name = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf"^ *(?:{name}) *(?:, *(?:{name}) *)*$"


def _metric_list(allowed: dict[str, str]) -> Any:
    names = ", ".join(allowed)
    return Annotated[
        str,
        _checked(lambda raw: check_metric_names(raw, allowed)),
        Field(
            max_length=MAX_LIST_CHARS,
            # The canonical form, documented; spaces and empty items are tolerated.
            json_schema_extra={"pattern": _name_list_pattern(allowed)},
            description=f"Comma-separated metric names: {names}. Not counted by Engage (400): {', '.join(NOT_COUNTED)}.",
        ),
    ]


MetricName = Literal[tuple(METRICS)]
LinkMetricName = Literal[tuple(LINK_METRICS)]
Precision = Literal[tuple(PRECISIONS)]


def _list(description: str, pattern: str | None = None) -> Any:
    """A delimited list; ``pattern`` documents its form with the default delimiter ``,``
    (the items are checked after splitting by ``delimiter``)."""
    extra: dict[str, Any] | None = {"pattern": pattern} if pattern else None
    return Annotated[str, Field(max_length=MAX_LIST_CHARS, description=description, json_schema_extra=extra)]


#: The form SparkPost writes (``2024-05-01T08:00``, seconds, fractions, ``Z`` or an offset
#: optional), documented; any other ISO 8601 date-time with a ``T`` is accepted too.
TIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?$"
)
Time = Annotated[DateTimeText, Field(json_schema_extra={"pattern": TIME_PATTERN})]

Delimiter = Text(MAX_DELIMITER_CHARS, description="Separator of the list parameters (default ',')")


class MetricsWindow(Query):
    """``from`` (required), ``to`` (default now) and ``timezone``: the window, widened to whole
    UTC hours (the rollups' grain)."""

    from_: Time = Field(alias="from", description="Start, YYYY-MM-DDTHH:MM, in `timezone` unless an offset is given")
    to: Time | None = Field(default=None, description="End (default now), YYYY-MM-DDTHH:MM")
    timezone: TimeZone | None = Field(
        default=None, description="IANA zone of `from`/`to` and of local buckets (default UTC)"
    )


class MetricsFilters(MetricsWindow):
    delimiter: Delimiter | None = None
    campaigns: _list("Campaign ids, delimited") | None = None
    templates: _list("Template ids, delimited") | None = None
    domains: _list("Recipient domains, delimited") | None = None


class MetricsSummaryQuery(MetricsFilters):
    """``/metrics/deliverability``."""

    metrics: _metric_list(METRICS)


class MetricsGroupedQuery(MetricsSummaryQuery):
    """``/metrics/deliverability/{domain,campaign,template}``: ``order_by`` must be one of the
    requested metrics (default: the first)."""

    order_by: Annotated[MetricName, _checked(check_order_by)] | None = Field(
        default=None, description="One of the requested metrics; rows with the largest value first"
    )
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="At most this many rows")


class MetricsTimeSeriesQuery(MetricsSummaryQuery):
    """``/metrics/deliverability/time-series``."""

    precision: Annotated[Precision, _checked(check_precision)] | None = Field(
        default=None,
        description=(
            "Bucket width (default day); buckets start at local midnight in `timezone`. hour allows a window of at most "
            f"31 days; a series holds at most {MAX_SERIES_BUCKETS} buckets. SparkPost's 1min, 5min and 15min are "
            "refused: Engage keeps hourly rollups."
        ),
    )


class MetricsLinkNameQuery(MetricsWindow):
    """``/metrics/deliverability/link-name``: clicks per link name."""

    delimiter: Delimiter | None = None
    campaigns: _list("Campaign ids, delimited") | None = None
    templates: _list("Template ids, delimited") | None = None
    metrics: _metric_list(LINK_METRICS)
    order_by: Annotated[LinkMetricName, _checked(check_order_by)] | None = Field(
        default=None, description="One of the requested metrics; rows with the largest value first"
    )
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="At most this many rows (default 1000)")


class MetricsValuesQuery(MetricsFilters):
    """``/metrics/{campaigns,domains,templates}``: the values with data in the window."""

    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT, description="At most this many values")


_EVENT_NAMES = ", ".join(NAMES)


class EventsWindow(Query):
    delimiter: Delimiter | None = None
    per_page: int | None = Field(default=None, ge=1, le=MAX_PER_PAGE, description="Events per page (default 1000)")
    events: _list(f"Event types, delimited: {_EVENT_NAMES}", _name_list_pattern(NAMES)) | None = None
    recipients: _list("Recipient addresses, delimited (case-insensitive)") | None = None
    bounce_classes: _list("Numeric bounce classes, delimited", r"^[0-9]+(,[0-9]+)*$") | None = None


class EventsMessageQuery(EventsWindow):
    """``/events/message`` (SPEC B §6.4): times in UTC unless an offset is given; cursor
    paging. SparkPost's sending_domains, sending_ips, ip_pools, subaccounts,
    mailbox_providers, mailbox_provider_regions, ab_tests and ab_test_versions are refused."""

    from_: Time | None = Field(default=None, alias="from", description="Start, inclusive (default 24 hours ago)")
    to: Time | None = Field(default=None, description="End, exclusive (default now)")
    cursor: Text(MAX_CURSOR_CHARS, description="`initial` (default) or the cursor of `links.next`") | None = None
    event_ids: _list("Event ids, delimited") | None = None
    recipient_domains: _list("Recipient domains, delimited") | None = None
    from_addresses: _list("From addresses, delimited (substring match)") | None = None
    subjects: _list("Subjects, delimited (substring match)") | None = None
    reasons: _list("Bounce or failure reasons, delimited (substring match)") | None = None
    campaigns: _list("Campaign ids, delimited") | None = None
    templates: _list("Template ids, delimited") | None = None
    messages: _list("Message ids, delimited") | None = None
    transmissions: _list("Transmission ids, delimited") | None = None


class MessageEventsQuery(EventsWindow):
    """``/message-events`` (SPEC B §6.4, SparkPost's older names): page paging, ``timezone``
    for ``from``/``to`` and for the timestamps shown."""

    from_: Time | None = Field(default=None, alias="from", description="Start, inclusive (default 1 hour ago)")
    to: Time | None = Field(default=None, description="End, exclusive (default now)")
    timezone: TimeZone | None = Field(
        default=None, description="IANA zone of `from`/`to` and of timestamps (default UTC)"
    )
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="Page number (default 1)")
    campaign_ids: _list("Campaign ids, delimited") | None = None
    template_ids: _list("Template ids, delimited") | None = None
    message_ids: _list("Message ids, delimited") | None = None
    transmission_ids: _list("Transmission ids, delimited") | None = None
    friendly_froms: _list("From addresses, delimited (substring match)") | None = None
    reason: Text(MAX_LIST_CHARS, description="Reason substring (SparkPost's %reason% form accepted)") | None = None


# --- answers ----------------------------------------------------------------------------


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Link(BaseModel):
    href: str
    rel: str
    method: str


class PageLink(BaseModel):
    href: str
    rel: Literal["first", "previous", "next", "last"]


class MetricsIndexAnswer(Answer):
    results: dict[str, Any]
    links: list[Link]


class MetricRow(Answer):
    """The requested metrics, each a count."""

    __pydantic_extra__: dict[str, int]


class MetricsSummaryAnswer(Answer):
    results: list[MetricRow] = Field(min_length=1, max_length=1)
    links: list[Link]


class DomainRow(MetricRow):
    domain: str


class CampaignRow(MetricRow):
    campaign_id: str


class TemplateRow(MetricRow):
    template_id: str


class TimeSeriesRow(MetricRow):
    ts: str = Field(description="Bucket start, ISO 8601 with the offset of `timezone`")


class LinkNameRow(MetricRow):
    link_name: str


class DomainRows(Answer):
    results: list[DomainRow]


class CampaignRows(Answer):
    results: list[CampaignRow]


class TemplateRows(Answer):
    results: list[TemplateRow]


class TimeSeriesRows(Answer):
    results: list[TimeSeriesRow]


class LinkNameRows(Answer):
    results: list[LinkNameRow]


class CampaignList(Answer):
    campaigns: list[str]


class DomainList(Answer):
    domains: list[str]


class TemplateList(Answer):
    templates: list[str]


class CampaignValues(Answer):
    results: CampaignList


class DomainValues(Answer):
    results: DomainList


class TemplateValues(Answer):
    results: TemplateList


class Event(Answer):
    """One event in SparkPost's flat shape (SPEC B §6.2, §6.3): these fields always, the
    type's own fields, and fields stored beyond the columns."""

    type: Literal[RECORDED]
    event_id: str
    timestamp: str = Field(description="ISO 8601 with offset")
    message_id: str
    transmission_id: str
    campaign_id: str
    template_id: str
    template_version: str
    rcpt_to: str
    raw_rcpt_to: str
    recipient_domain: str
    rcpt_meta: dict[str, Any]
    rcpt_tags: list[Any]
    friendly_from: str
    subject: str
    transactional: Literal["0", "1"]


class CursorLinks(Answer):
    next: str | None = Field(default=None, description="The next page; absent on the last")


class EventsMessageAnswer(Answer):
    results: list[Event]
    total_count: int = Field(ge=0)
    links: CursorLinks


class MessageEventsAnswer(Answer):
    results: list[Event]
    total_count: int = Field(ge=0)
    links: list[PageLink]
