"""PURE: SparkPost metric names, how each is derived from the rollup counters, and the
parsing of the metrics query parameters. No Django, no clock: ``now`` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailcore.times import offset_problem

# metric name -> SQL over the summed counters of analytics_rollup_hourly (SPEC A.3, B §7.3)
METRICS: dict[str, str] = {
    "count_targeted": "injected + policy_rejected + generation_failed + generation_rejected",
    "count_injected": "injected",
    "count_sent": "delivered + bounce",
    "count_accepted": "delivered",
    "count_delivered": "delivered",
    "count_bounce": "bounce",
    "count_inband_bounce": "bounce",
    "count_outofband_bounce": "0",
    "count_hard_bounce": "hard_bounce",
    "count_soft_bounce": "soft_bounce",
    "count_block_bounce": "block_bounce",
    "count_admin_bounce": "admin_bounce",
    "count_undetermined_bounce": "undetermined_bounce",
    "count_delayed": "delayed",
    "count_generation_failed": "generation_failed",
    "count_generation_rejection": "generation_rejected",
    "count_policy_rejection": "policy_rejected",
    "count_rejected": "policy_rejected + generation_failed + generation_rejected",
    "count_rendered": "rendered",
    "count_unique_rendered": "unique_rendered",
    "count_initial_rendered": "initial_rendered",
    "count_unique_initial_rendered": "unique_initial_rendered",
    "count_unique_confirmed_opened": "unique_confirmed_opened",
    "count_clicked": "clicked",
    "count_unique_clicked": "unique_clicked",
    "count_unsubscribe": "unsubscribe",
    "count_spam_complaint": "0",
}
# SparkPost names Engage does not count: asking for one is a 400 that says so.
NOT_COUNTED: dict[str, str] = {
    name: "Engage does not record delivery attempt times, retries or message sizes"
    for name in (
        "count_delivered_first", "count_delivered_subsequent", "count_delayed_first",
        "total_delivery_time_first", "total_delivery_time_subsequent", "total_msg_volume",
    )
}  # fmt: skip
LINK_METRICS: dict[str, str] = {"count_clicked": "unique_clicked", "count_raw_clicked": "clicked"}

# precision -> (PostgreSQL bucket width, the longest window it accepts)
PRECISIONS: dict[str, timedelta | None] = {
    "hour": timedelta(days=31),
    "12hr": None,
    "day": None,
    "week": None,
    "month": None,
}
SUB_HOUR = ("1min", "5min", "15min")
FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")

#: The most buckets one time series may hold (issue 11: a day series from year 1 to 9999 ran
#: for over a minute and answered 197 MB). 10,000 days is over 27 years.
MAX_SERIES_BUCKETS = 10_000
#: The instants a ``from``/``to`` may name, in UTC: a day inside the years 1 to 9999, so that
#: flooring to the hour, to a local day, week or month, and the day arithmetic of the rollup
#: reads never leave the years Python and psycopg can hold.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


class ParamError(ValueError):
    """A bad query parameter; ``missing`` when a required one was absent."""

    def __init__(self, message: str, *, missing: bool = False):
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class MetricsQuery:
    start: datetime  # aware, inclusive, floored to the UTC hour
    end: datetime  # aware, exclusive, ceiled to the UTC hour
    tz: ZoneInfo
    metrics: tuple[str, ...]
    campaigns: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    limit: int | None = None
    order_by: str | None = None
    precision: str = "day"


def parse_timezone(raw: str | None) -> ZoneInfo:
    """An IANA zone (default UTC). Errors: ParamError naming ``timezone`` for an unknown name,
    a name too long for a file name, or one that names a directory of the zone database."""
    name = (raw or "UTC").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise ParamError(f"'timezone': '{shown}' is not an IANA time zone name (e.g. America/New_York)") from None


def parse_time(raw: str, name: str, tz: tzinfo) -> datetime:
    """``YYYY-MM-DDTHH:MM`` (seconds and a UTC offset or ``Z`` also accepted); a time
    without offset is in ``tz``. Errors: ParamError naming ``name`` for any other text, an
    offset beyond ±15:59 (``mailcore.times``: PostgreSQL refuses it), and for an instant
    outside ``EARLIEST``..``LATEST`` (UTC)."""
    text = raw.strip()
    value = None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        pass
    if value is None or "T" not in text:
        raise ParamError(f"'{name}' must be a time like 2024-05-01T00:00, got '{raw[:64]}'")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    if (problem := offset_problem(value)) is not None:
        raise ParamError(f"'{name}': {problem}, got '{raw[:64]}'")
    try:
        in_range = EARLIEST <= value.astimezone(UTC) <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ParamError(f"'{name}' must lie between 0001-01-02 and 9999-12-30 in UTC, got '{raw[:64]}'")
    return value


def split_list(raw: str | None, delimiter: str = ",") -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.split(delimiter) if item.strip())


def check_metric_names(raw: str | None, allowed: dict[str, str] | None = None) -> tuple[str, ...]:
    """The names of the comma list ``metrics`` (spaces and empty items ignored), each one of
    ``allowed`` (default: every metric). Errors: ParamError naming ``metrics`` (missing when
    the list is empty)."""
    allowed = METRICS if allowed is None else allowed
    metrics = split_list(raw, ",")
    if not metrics:
        raise ParamError("'metrics' is required: a comma-separated list of metric names", missing=True)
    for name in metrics:
        if name in NOT_COUNTED and name not in allowed:
            raise ParamError(f"'metrics': metric '{name[:64]}' is not available: {NOT_COUNTED[name]}")
        if name not in allowed:
            raise ParamError(f"'metrics': unknown metric '{name[:64]}'; known: {', '.join(sorted(allowed))}")
    return metrics


def check_order_by(raw: str) -> str:
    """``order_by`` names a metric (that it is one of the requested ones is checked with them)."""
    if raw not in METRICS and raw not in LINK_METRICS:
        raise ParamError(f"'order_by' must be one of the requested metrics, got '{raw[:64]}'")
    return raw


def check_precision(raw: str) -> str:
    """One of ``PRECISIONS``; SparkPost's sub-hour precisions are refused with the reason."""
    if raw in SUB_HOUR:
        raise ParamError(
            f"'precision': '{raw}' is not available: Engage keeps hourly rollups; use hour, 12hr, day, week or month"
        )
    if raw not in PRECISIONS:
        raise ParamError(f"'precision' must be one of hour, 12hr, day, week, month; got '{raw[:64]}'")
    return raw


def series_buckets(start: datetime, end: datetime, precision: str) -> int:
    """How many buckets of ``precision`` the window ``start``..``end`` (exclusive) holds, counted
    on the local wall clock of the datetimes given (a DST change moves it by one at most)."""
    if precision == "month":
        last = end - timedelta(microseconds=1)
        return (last.year - start.year) * 12 + last.month - start.month + 1
    first = start.replace(minute=0, second=0, microsecond=0)
    if precision == "hour":
        step = timedelta(hours=1)
    elif precision == "12hr":
        first, step = first.replace(hour=first.hour // 12 * 12), timedelta(hours=12)
    elif precision == "day":
        first, step = first.replace(hour=0), timedelta(days=1)
    else:
        first, step = first.replace(hour=0) - timedelta(days=first.weekday()), timedelta(weeks=1)
    return -(-(end.replace(tzinfo=None) - first.replace(tzinfo=None)) // step)


def _utc_floor(value: datetime) -> datetime:
    utc = value.astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floored = _utc_floor(value)
    return floored if floored == value else floored + timedelta(hours=1)


def parse_metrics_query(
    params: dict[str, str],
    *,
    now: datetime,
    allowed: dict[str, str] | None = None,
    need_metrics: bool = True,
    time_series: bool = False,
) -> MetricsQuery:
    """Validate the metrics parameters (SPEC B §7.2).

    ``from`` and ``to`` are widened to whole UTC hours (the rollups' grain): ``from`` is
    floored and ``to`` ceiled, so 09:30..10:15 reads the hours 09:00..11:00. With
    ``time_series``, a window of more than ``MAX_SERIES_BUCKETS`` buckets of ``precision``
    is refused (ParamError naming from, to and precision).
    """
    allowed = METRICS if allowed is None else allowed
    tz = parse_timezone(params.get("timezone"))
    raw_from = params.get("from")
    if not raw_from:
        raise ParamError("'from' is required (format YYYY-MM-DDTHH:MM)", missing=True)
    start = parse_time(raw_from, "from", tz)
    end = parse_time(params["to"], "to", tz) if params.get("to") else now
    if end <= start:
        raise ParamError("'to' must be later than 'from'")
    delimiter = params.get("delimiter") or ","
    metrics = check_metric_names(params.get("metrics"), allowed) if need_metrics else ()
    order_by = params.get("order_by") or None
    if order_by is not None and order_by not in metrics:
        raise ParamError(f"'order_by' must be one of the requested metrics, got '{order_by[:64]}'")
    limit = None
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise ParamError(f"'limit' must be an integer, got '{params['limit'][:64]}'") from None
        if not 1 <= limit <= 10000:
            raise ParamError("'limit' must be between 1 and 10000")
    precision = check_precision(params.get("precision") or "day")
    window = PRECISIONS[precision]
    if window is not None and end - start > window:
        raise ParamError(f"precision '{precision}' allows a window of at most {window.days} days")
    if time_series:
        buckets = series_buckets(start.astimezone(tz), end.astimezone(tz), precision)
        if buckets > MAX_SERIES_BUCKETS:
            raise ParamError(
                f"'from' to 'to' holds about {buckets} buckets of precision '{precision}'; a time series holds at "
                f"most {MAX_SERIES_BUCKETS}: narrow the window or choose a coarser precision"
            )
    return MetricsQuery(
        start=_utc_floor(start),
        end=ceil_hour(end),
        tz=tz,
        metrics=metrics,
        campaigns=split_list(params.get("campaigns"), delimiter),
        templates=split_list(params.get("templates"), delimiter),
        domains=tuple(d.lower() for d in split_list(params.get("domains"), delimiter)),
        limit=limit,
        order_by=order_by,
        precision=precision,
    )
