"""PURE: SparkPost metric names, how each is derived from the rollup counters, and the
parsing of the metrics query parameters. No Django, no clock: ``now`` is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    name = (raw or "UTC").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamError(f"timezone '{name}' is not an IANA time zone name (e.g. America/New_York)") from None


def parse_time(raw: str, name: str, tz: ZoneInfo) -> datetime:
    """``YYYY-MM-DDTHH:MM`` (seconds and a UTC offset or ``Z`` also accepted); a time
    without offset is in ``tz``."""
    text = raw.strip()
    value = None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        pass
    if value is None or "T" not in text:
        raise ParamError(f"'{name}' must be a time like 2024-05-01T00:00, got '{raw}'")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def split_list(raw: str | None, delimiter: str = ",") -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.split(delimiter) if item.strip())


def _utc_floor(value: datetime) -> datetime:
    utc = value.astimezone(UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floored = _utc_floor(value)
    return floored if floored == value else floored + timedelta(hours=1)


def parse_metrics_query(
    params: dict[str, str], *, now: datetime, allowed: dict[str, str] | None = None, need_metrics: bool = True
) -> MetricsQuery:
    """Validate the metrics parameters (SPEC B §7.2).

    ``from`` and ``to`` are widened to whole UTC hours (the rollups' grain): ``from`` is
    floored and ``to`` ceiled, so 09:30..10:15 reads the hours 09:00..11:00.
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
    metrics: tuple[str, ...] = ()
    if need_metrics:
        metrics = split_list(params.get("metrics"), ",")
        if not metrics:
            raise ParamError("'metrics' is required: a comma-separated list of metric names", missing=True)
        for name in metrics:
            if name in NOT_COUNTED and name not in allowed:
                raise ParamError(f"metric '{name}' is not available: {NOT_COUNTED[name]}")
            if name not in allowed:
                raise ParamError(f"unknown metric '{name}'; known: {', '.join(sorted(allowed))}")
    order_by = params.get("order_by") or None
    if order_by is not None and order_by not in metrics:
        raise ParamError(f"'order_by' must be one of the requested metrics, got '{order_by}'")
    limit = None
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise ParamError(f"'limit' must be an integer, got '{params['limit']}'") from None
        if not 1 <= limit <= 10000:
            raise ParamError("'limit' must be between 1 and 10000")
    precision = params.get("precision") or "day"
    if precision in SUB_HOUR:
        raise ParamError(
            f"precision '{precision}' is not available: Engage keeps hourly rollups; use hour, 12hr, day, week or month"
        )
    if precision not in PRECISIONS:
        raise ParamError(f"precision must be one of 1min, 5min, 15min, hour, 12hr, day, week, month; got '{precision}'")
    window = PRECISIONS[precision]
    if window is not None and end - start > window:
        raise ParamError(f"precision '{precision}' allows a window of at most {window.days} days")
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
