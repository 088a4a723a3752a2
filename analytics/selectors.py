"""Reads of the rollups (metrics API and report) and of the event store (events search).

Every metrics read sums ``analytics_rollup_hourly`` / ``analytics_link_rollup_hourly``
rows over the requested UTC hours; none counts raw events.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DataError, connection, transaction
from django.db.models import Q

from analytics.metrics import LINK_METRICS, METRICS, MetricsQuery
from analytics.models import ROLLUP_COUNTERS, BatchState, Webhook, WebhookBatch
from analytics.search import FILTERS, EventQuery
from engage import errors
from mailcore.ids import TEST_SEND_CAMPAIGN
from tracking.models import EVENT_COLUMNS

GROUP_KEYS = {"domain": "domain", "campaign_id": "campaign_id", "template_id": "template_id"}

_SUMS = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in ROLLUP_COUNTERS)


def _where(q: MetricsQuery, *, domains: bool = True) -> tuple[str, list[Any]]:
    """Hour range and filters, for the hourly tables."""
    filters, params = _filters(q, domains=domains)
    return "hour >= %s AND hour < %s" + filters, [q.start, q.end, *params]


def _filters(q: MetricsQuery, *, domains: bool = True) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if q.campaigns:
        clauses.append("campaign_id = ANY(%s)")
        params.append(list(q.campaigns))
    if q.templates:
        clauses.append("template_id = ANY(%s)")
        params.append(list(q.templates))
    if domains and q.domains:
        clauses.append("domain = ANY(%s)")
        params.append(list(q.domains))
    return "".join(f" AND {c}" for c in clauses), params


_KEY_COLUMNS = "campaign_id, template_id, domain, " + ", ".join(ROLLUP_COUNTERS)


def _source(q: MetricsQuery, *, daily: bool = True) -> tuple[str, list[Any]]:
    """The rollup rows of the window as a subquery ``src`` (column ``hour``): the whole
    UTC days from ``analytics_rollup_daily``, the partial days at the edges from the
    hourly table; hourly only when ``daily`` is false or the window holds no whole day."""
    filters, params = _filters(q)
    first_day = q.start.replace(hour=0) + (timedelta(days=1) if q.start.hour else timedelta(0))
    last_day = q.end.replace(hour=0)
    if not daily or first_day >= last_day:
        sql = f"(SELECT hour, {_KEY_COLUMNS} FROM analytics_rollup_hourly WHERE hour >= %s AND hour < %s{filters}) src"
        return sql, [q.start, q.end, *params]
    sql = (
        f"(SELECT day AS hour, {_KEY_COLUMNS} FROM analytics_rollup_daily WHERE day >= %s AND day < %s{filters} "
        f"UNION ALL SELECT hour, {_KEY_COLUMNS} FROM analytics_rollup_hourly "
        f"WHERE ((hour >= %s AND hour < %s) OR (hour >= %s AND hour < %s)){filters}) src"
    )
    return sql, [first_day, last_day, *params, q.start, first_day, last_day, q.end, *params]


def _select_metrics(metrics: tuple[str, ...]) -> str:
    return ", ".join(f"({METRICS[m]})::bigint AS {m}" for m in metrics)


def _fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [col.name for col in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def metrics_summary(*, query: MetricsQuery) -> dict[str, int]:
    """The requested metrics over the whole window: one object."""
    source, params = _source(query)
    sql = f"SELECT {_select_metrics(query.metrics)} FROM (SELECT {_SUMS} FROM {source}) s"
    return _fetch(sql, params)[0]


def metrics_grouped(*, query: MetricsQuery, key: str) -> list[dict[str, Any]]:
    """The requested metrics per ``key`` (domain, campaign_id or template_id), largest
    ``order_by`` (default: the first metric) first."""
    column = GROUP_KEYS[key]
    source, params = _source(query)
    order = query.order_by or query.metrics[0]
    limit = f"LIMIT {int(query.limit)}" if query.limit else ""
    sql = (
        f"SELECT {column} AS {key}, {_select_metrics(query.metrics)} FROM ("
        f"SELECT {column}, {_SUMS} FROM {source} GROUP BY {column}) s "
        f"ORDER BY {order} DESC, {key} {limit}"
    )
    return _fetch(sql, params)


_BUCKETS = {
    "hour": ("date_trunc('hour', {t})", "1 hour"),
    "12hr": ("date_bin(interval '12 hours', {t}, timestamp '2000-01-01')", "12 hours"),
    "day": ("date_trunc('day', {t})", "1 day"),
    "week": ("date_trunc('week', {t})", "1 week"),
    "month": ("date_trunc('month', {t})", "1 month"),
}


def metrics_time_series(*, query: MetricsQuery) -> list[dict[str, Any]]:
    """The requested metrics per bucket of ``precision``, buckets in ``timezone`` (local
    midnight for day/week/month), every bucket of the window present, oldest first."""
    trunc, step = _BUCKETS[query.precision]
    utc_days = query.precision in ("day", "week", "month") and query.tz.key in ("UTC", "Etc/UTC")
    source, params = _source(query, daily=utc_days)
    tz = query.tz.key
    bucket = trunc.format(t="(hour AT TIME ZONE %s)")
    first = trunc.format(t="(%s::timestamptz AT TIME ZONE %s)")
    sql = f"""
    WITH sums AS (
      SELECT {bucket} AS bucket, {_SUMS} FROM {source} GROUP BY 1
    ), series AS (
      SELECT generate_series({first}, (%s::timestamptz - interval '1 microsecond') AT TIME ZONE %s,
                             interval '{step}') AS bucket
    )
    SELECT series.bucket AS ts, {_select_metrics(query.metrics)}
    FROM series LEFT JOIN sums USING (bucket) ORDER BY series.bucket"""
    try:
        with transaction.atomic():
            rows = _fetch(sql, [tz, *params, query.start, tz, query.end, tz])
    except DataError:
        # A name Python's zone database holds and PostgreSQL's does not.
        raise errors.InvalidParams(f"'timezone': '{tz}' is not a time zone the database knows") from None
    for row in rows:
        row["ts"] = _local_iso(row["ts"], query.tz)
        for metric in query.metrics:
            row[metric] = row[metric] or 0
    return rows


def _local_iso(naive: datetime, tz: ZoneInfo) -> str:
    return naive.replace(tzinfo=tz).isoformat(timespec="seconds")


def _link_where(q: MetricsQuery) -> tuple[str, list[Any]]:
    return _where(q, domains=False)


def metrics_link_names(*, query: MetricsQuery) -> list[dict[str, Any]]:
    """Clicks per link name: ``count_clicked`` = unique (messages), ``count_raw_clicked`` = all."""
    where, params = _link_where(query)
    cols = ", ".join(f"sum({LINK_METRICS[m]})::bigint AS {m}" for m in query.metrics)
    order = query.order_by or query.metrics[0]
    sql = (
        f"SELECT link_name, {cols} FROM analytics_link_rollup_hourly WHERE {where} "
        f"GROUP BY link_name ORDER BY {order} DESC, link_name LIMIT {int(query.limit or 1000)}"
    )
    return _fetch(sql, params)


def metrics_links(*, query: MetricsQuery, limit: int = 200) -> list[dict[str, Any]]:
    """Clicks and unique clicks per link, most clicked first (the report's drill-down):
    ``[{"link_name", "link_url", "link_position", "clicks", "unique_clicks"}]``. A link is its
    name, its URL as written in the template and its position in its part (so one template
    link is one row however personalised, and one URL written twice is two); clicks on links
    sent before positions existed are one row per name and clicked URL, position 0
    (``analytics.rollups``)."""
    where, params = _link_where(query)
    sql = (
        "SELECT link_name, link_url, link_position, sum(clicked)::bigint AS clicks, "
        "sum(unique_clicked)::bigint AS unique_clicks "
        f"FROM analytics_link_rollup_hourly WHERE {where} GROUP BY link_name, link_url, link_position "
        f"ORDER BY clicks DESC, link_name, link_url, link_position LIMIT {int(limit)}"
    )
    return _fetch(sql, params)


def metrics_values(*, query: MetricsQuery, key: str) -> list[str]:
    """Distinct non-empty values of ``key`` with rollup rows in the window (the list endpoints)."""
    column = GROUP_KEYS[key]
    source, params = _source(query)
    limit = f"LIMIT {int(query.limit)}" if query.limit else ""
    sql = f"SELECT DISTINCT {column} FROM {source} WHERE {column} <> '' ORDER BY {column} {limit}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def metrics_test_sends(*, query: MetricsQuery) -> int:
    """How many of the messages ``query`` counts (``count_targeted`` over its window and
    filters) are the template editor's test sends (campaign ``TEST_SEND_CAMPAIGN``): the
    metrics API counts them as any other; the overview and the report say so. 0 when the
    campaign filter leaves them out."""
    if query.campaigns and TEST_SEND_CAMPAIGN not in query.campaigns:
        return 0
    narrowed = dataclasses.replace(query, campaigns=(TEST_SEND_CAMPAIGN,), metrics=("count_targeted",))
    return metrics_summary(query=narrowed)["count_targeted"]


_EVENT_SELECT = "id, " + ", ".join(EVENT_COLUMNS)


def _event_where(query: EventQuery) -> tuple[str, list[Any]]:
    params: list[Any]
    clauses, params = ["timestamp >= %s", "timestamp < %s"], [query.start, query.end]
    for name, values in query.filters.items():
        column, how = FILTERS[name]
        if how == "like":
            clauses.append(f"{column} ILIKE ANY(%s)")
            params.append(["%" + v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for v in values])
        else:
            clauses.append(f"{column} = ANY(%s)")
            params.append(list(values))
    return " AND ".join(clauses), params


def _json_columns(row: dict[str, Any]) -> dict[str, Any]:
    # Django's psycopg cursor hands jsonb back as text (JSONField parses it); so do we.
    for name in ("rcpt_meta", "rcpt_tags", "extra"):
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


def events_fetch(*, pks: list[tuple[int, Any]]) -> list[dict[str, Any]]:
    """Event rows by (id, timestamp), oldest first (webhook batches)."""
    if not pks:
        return []
    sql = (
        f"SELECT {_EVENT_SELECT} FROM tracking_event WHERE (id, timestamp) IN "
        "(SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])) ORDER BY timestamp, id"
    )
    return [_json_columns(row) for row in _fetch(sql, [[p[0] for p in pks], [p[1] for p in pks]])]


def events_search(*, query: EventQuery, with_total: bool = True) -> tuple[list[dict[str, Any]], int | None, bool]:
    """Events matching ``query``, newest first: (one page of rows, total matches in the
    window or None, whether more rows follow). Keyset paging on (timestamp, id) when
    ``query.after`` is set, else OFFSET paging by ``query.page``."""
    where, params = _event_where(query)
    page_where, page_params = where, list(params)
    offset = ""
    if query.after is not None:
        page_where += " AND (timestamp, id) < (%s, %s)"
        page_params += list(query.after)
    elif query.page > 1:
        offset = f"OFFSET {(query.page - 1) * query.per_page}"
    sql = (
        f"SELECT {_EVENT_SELECT} FROM tracking_event WHERE {page_where} "
        f"ORDER BY timestamp DESC, id DESC LIMIT {query.per_page + 1} {offset}"
    )
    rows = [_json_columns(row) for row in _fetch(sql, page_params)]
    more = len(rows) > query.per_page
    total = None
    if with_total:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM tracking_event WHERE {where}", params)
            total = cursor.fetchone()[0]
    return rows[: query.per_page], total, more


# The newest matching event of each message (its keyset), then one page of them; ``total``
# counts the messages in the window (the CTE is computed once, read twice).
_MESSAGES_SQL = """
WITH newest AS (
  SELECT DISTINCT ON (message_id) message_id, timestamp, id FROM tracking_event
   WHERE {where} AND message_id <> ''
   ORDER BY message_id, timestamp DESC, id DESC)
SELECT message_id, timestamp, id, (SELECT count(*) FROM newest) AS total
  FROM newest WHERE {after} ORDER BY timestamp DESC, id DESC LIMIT %s
"""


def message_search(*, query: EventQuery) -> tuple[list[dict[str, Any]], int, bool]:
    """The messages with an event matching ``query`` (the filters and window of the events
    search, ``analytics.search``), newest first by their newest matching event.

    Returns (one page of ``{"message_id", "timestamp", "id"}``: ``query.per_page`` messages
    after the keyset ``query.after``, each with the time and id of its newest matching event,
    which is the keyset of the next page; the number of matching messages in the window;
    whether more follow). Events without a ``message_id`` are left out."""
    where, params = _event_where(query)
    after, after_params = "true", []
    if query.after is not None:
        after, after_params = "(timestamp, id) < (%s, %s)", list(query.after)
    sql = _MESSAGES_SQL.format(where=where, after=after)
    rows = _fetch(sql, [*params, *after_params, query.per_page + 1])
    total = rows[0]["total"] if rows else 0
    page = [{"message_id": r["message_id"], "timestamp": r["timestamp"], "id": r["id"]} for r in rows]
    return page[: query.per_page], total, len(rows) > query.per_page


def message_events(*, message_ids: list[str], limit: int = 200) -> dict[str, tuple[list[dict[str, Any]], int]]:
    """Every event of each message in ``message_ids`` whatever its time, oldest first (by
    ``timestamp``, then ``id``): ``{message_id: (the first ``limit`` event rows, the number
    of its events)}``. Rows have the columns of the events search (``tracking.models.EVENT_COLUMNS``
    and ``id``), for ``analytics.serialize.event_flat``. One query."""
    if not message_ids:
        return {}
    sql = (
        f"SELECT * FROM (SELECT {_EVENT_SELECT}, "
        "row_number() OVER (PARTITION BY message_id ORDER BY timestamp, id) AS n_, "
        "count(*) OVER (PARTITION BY message_id) AS total_ "
        "FROM tracking_event WHERE message_id = ANY(%s)) e WHERE n_ <= %s ORDER BY message_id, timestamp, id"
    )
    out: dict[str, tuple[list[dict[str, Any]], int]] = {}
    for row in _fetch(sql, [list(message_ids), limit]):
        row.pop("n_")
        total = row.pop("total_")
        out.setdefault(row["message_id"], ([], total))[0].append(_json_columns(row))
    return out


def event_counts(*, transmission_id: str) -> dict[str, int]:
    """``{event type: number of events}`` of one transmission, all that are stored (types
    with none are absent). One query (``tracking_event_transmission`` index)."""
    rows = _fetch(
        "SELECT type, count(*) AS n FROM tracking_event WHERE transmission_id = %s GROUP BY type", [transmission_id]
    )
    return {row["type"]: row["n"] for row in rows}


def webhook_list() -> list[Webhook]:
    return list(Webhook.objects.filter(deleted_at__isnull=True).order_by("created_at"))


def webhook_get(*, hook_id: Any, include_deleted: bool = False) -> Webhook:
    hooks = Webhook.objects.all() if include_deleted else Webhook.objects.filter(deleted_at__isnull=True)
    hook = hooks.filter(pk=hook_id).first()
    if hook is None:
        raise errors.NotFound(f"webhook '{hook_id}' does not exist")
    return hook


def webhook_batch_status(*, hook_id: Any, limit: int, now: datetime) -> list[WebhookBatch]:
    """Batches that failed at least once: still retrying or expired, and those that
    succeeded after a retry in the last 24 hours (SPEC B §8.2), newest first."""
    recent = now - timedelta(hours=24)
    batches = WebhookBatch.objects.filter(webhook_id=hook_id).filter(
        Q(state=BatchState.PENDING, attempts__gte=1)
        | Q(state=BatchState.EXPIRED)
        | Q(state=BatchState.DELIVERED, attempts__gt=1, last_attempt_at__gte=recent)
    )
    return list(batches.order_by("-created_at")[:limit])
