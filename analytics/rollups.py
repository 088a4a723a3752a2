"""Rollup maintenance, called by the event lander inside its landing transaction.

``rollups_apply(cursor, events)`` folds newly landed events into:

- ``analytics_rollup_hourly``: counters per UTC hour x campaign x template x recipient domain,
  and ``analytics_rollup_daily``, the same per UTC day (read for the whole days of long windows);
- ``analytics_link_rollup_hourly``: clicks per UTC hour x campaign x template x link, a
  link being (link name, URL as written, position): ``link_url`` is the click's
  ``engage_link_template_url`` (the template link before substitution, so one template link
  is one row however personalised) and ``link_position`` its ``engage_link_position``; a
  click without them (a link sent before they existed) falls back to its
  ``target_link_url`` and position 0;
- the first-seen state behind the unique counters (``analytics_message_engagement`` per
  message, ``analytics_message_link_click`` per message and link);
- ``analytics_webhook_feed``: one row per event of a type some active webhook wants, once
  whatever the number of webhooks (the webhooks' batches are cut from it later, on the
  webhooks queue: ``analytics.webhooks``).

Everything is set-based: the batch is copied into a session temp table and each target
table gets ONE statement per batch, whatever the batch size. Unique counters use
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on the first-seen tables, which returns
the previous first-seen time too (``prev_*``): a message counts once, in the hour of its
first event of that kind, and an earlier event landing late moves the count to its hour.
Rows are upserted in key order so concurrent landers lock in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from analytics.models import ROLLUP_COUNTERS
from mailcore.events import EVENT_TYPES, LINK_POSITION, LINK_TEMPLATE_URL

LANDED = "analytics_landed"
LANDED_COLUMNS = (
    "id", "timestamp", "type", "message_id", "campaign_id", "template_id", "domain",
    "bounce_class", "link_name", "link_url", "link_position",
)  # fmt: skip

_CREATE_LANDED = f"""
CREATE TEMP TABLE IF NOT EXISTS {LANDED} (
    id bigint, timestamp timestamptz NOT NULL, type text NOT NULL, message_id text NOT NULL,
    campaign_id text NOT NULL, template_id text NOT NULL, domain text NOT NULL,
    bounce_class text NOT NULL, link_name text NOT NULL, link_url text NOT NULL, link_position int NOT NULL
)"""

# Keys of the rollup unique indexes are capped so an absurd URL cannot fail a landing
# (btree entries are limited to ~2.7 kB).
DOMAIN_MAX, LINK_NAME_MAX, LINK_URL_MAX, KEY_MAX = 255, 512, 2000, 64


def _types_in(names: list[str]) -> str:
    return "type IN ({})".format(", ".join(f"'{name}'" for name in names))


# How each event lands in the hourly counters: its type's counter (mailcore.events), and a
# bounce's class family (bounce classes: SPEC issue "What recipients did").
_TYPE_COUNTERS = dict.fromkeys(event.counter for event in EVENT_TYPES if event.counter)
_COUNT_FILTERS: dict[str, str] = {
    **{c: _types_in([event.name for event in EVENT_TYPES if event.counter == c]) for c in _TYPE_COUNTERS},
    "hard_bounce": "type = 'bounce' AND bounce_class IN ('10', '30', '90')",
    "soft_bounce": "type = 'bounce' AND bounce_class IN ('20', '21', '22', '23', '24', '40', '60', '70', '100')",
    "block_bounce": "type = 'bounce' AND bounce_class IN ('50', '51', '52', '53', '54')",
    "admin_bounce": "type = 'bounce' AND bounce_class IN ('25', '80')",
    "undetermined_bounce": "type = 'bounce' AND bounce_class = '1'",
}
# unique counter -> (first-seen column in analytics_message_engagement, event types): one per
# type with a unique counter, and a message's first of any of them (SPEC A.3).
_UNIQUE_TYPES = [event.name for event in EVENT_TYPES if event.unique_counter]
_UNIQUE: dict[str, tuple[str, str]] = {
    **{event.unique_counter: (event.name, _types_in([event.name])) for event in EVENT_TYPES if event.unique_counter},
    "unique_confirmed_opened": ("confirmed", "TRUE"),
}


def _counters_check() -> None:
    """Refuse to load when the counters the rollup SQL writes and the rollup columns differ,
    saying which side to change (an ``assert`` would say nothing, and vanish under -O)."""
    written, columns = set(_COUNT_FILTERS) | set(_UNIQUE), set(ROLLUP_COUNTERS)
    if missing := sorted(written - columns):
        raise RuntimeError(
            f"mailcore.events counts events in {missing}, which are not rollup columns: add each to "
            "analytics.models.ROLLUP_COUNTERS and as a field of analytics.models.RollupCounters, "
            "then run `manage.py makemigrations analytics` (it adds the column to "
            "analytics_rollup_hourly and analytics_rollup_daily), and name its metric in "
            "analytics.metrics.METRICS"
        )
    if unused := sorted(columns - written):
        raise RuntimeError(
            f"the rollup columns {unused} (analytics.models.ROLLUP_COUNTERS) are counted by nothing: "
            "name each as an EventType's counter or unique_counter in mailcore.events, or a bounce "
            "family in analytics.rollups._COUNT_FILTERS, or remove the column (and its migration)"
        )


_counters_check()


# UTC hours and days by arithmetic (date_bin), cheaper per row than date_trunc(..., 'UTC').
def _hour(ts: str) -> str:
    return f"date_bin('1 hour', {ts}, '2000-01-01 00:00+00')"


def _day(ts: str) -> str:
    return f"date_bin('1 day', {ts}, '2000-01-01 00:00+00')"


def _rollup_sql(source: str) -> str:
    first_cols = ", ".join(f"first_{col}" for col, _ in _UNIQUE.values())
    first_aggs = ",\n    ".join(f"min(timestamp) FILTER (WHERE {cond})" for _, cond in _UNIQUE.values())
    updates = ",\n    ".join(
        f"prev_{col} = e.first_{col}, first_{col} = LEAST(e.first_{col}, EXCLUDED.first_{col})"
        for col, _ in _UNIQUE.values()
    )
    returning = ", ".join(f"e.first_{col}, e.prev_{col}" for col, _ in _UNIQUE.values())
    kinds = ", ".join(f"('{name}', eng.first_{col}, eng.prev_{col})" for name, (col, _) in _UNIQUE.items())
    # Per-batch deltas are int: sum(int) accumulates in bigint, sum(bigint) in (slow) numeric.
    count_aggs = ",\n    ".join(
        f"(count(*) FILTER (WHERE {cond}))::int AS {name}" for name, cond in _COUNT_FILTERS.items()
    )
    unique_aggs = ", ".join(f"coalesce(sum(d) FILTER (WHERE metric = '{name}'), 0)::int AS {name}" for name in _UNIQUE)
    counters = list(_COUNT_FILTERS) + list(_UNIQUE)
    return f"""
WITH eng AS (
  INSERT INTO analytics_message_engagement AS e (message_id, campaign_id, template_id, domain, {first_cols})
  SELECT message_id, min(campaign_id), min(template_id), min(domain),
    {first_aggs}
  FROM {source}
  WHERE {_types_in(_UNIQUE_TYPES)} AND message_id <> ''
  GROUP BY message_id ORDER BY message_id
  ON CONFLICT (message_id) DO UPDATE SET
    {updates}
  RETURNING e.campaign_id, e.template_id, e.domain, {returning}
), deltas AS (
  -- One aggregation of the batch's events and of the unique-counter moves (+1 in the hour
  -- of a new first occurrence, -1 in the hour of the one it replaces).
  SELECT hour, campaign_id, template_id, domain, {count_aggs}, {unique_aggs}
  FROM (
    SELECT {_hour("timestamp")} AS hour, campaign_id, template_id, domain, type, bounce_class, NULL AS metric, 0 AS d
    FROM {source}
    UNION ALL
    SELECT {_hour("x.at")}, eng.campaign_id, eng.template_id, eng.domain, NULL, NULL, k.metric, x.d
    FROM eng
    CROSS JOIN LATERAL (VALUES {kinds}) AS k(metric, cur, prev)
    CROSS JOIN LATERAL (VALUES (k.cur, 1), (k.prev, -1)) AS x(at, d)
    WHERE k.cur IS NOT NULL AND (k.prev IS NULL OR k.cur < k.prev) AND x.at IS NOT NULL
  ) rows
  GROUP BY 1, 2, 3, 4
), hourly AS (
INSERT INTO analytics_rollup_hourly AS r (hour, campaign_id, template_id, domain, {", ".join(counters)})
SELECT hour, campaign_id, template_id, domain, {", ".join(counters)}
FROM deltas ORDER BY 1, 2, 3, 4
ON CONFLICT (hour, campaign_id, template_id, domain) DO UPDATE SET
  {", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in counters)}
)
INSERT INTO analytics_rollup_daily AS r (day, campaign_id, template_id, domain, {", ".join(counters)})
SELECT {_day("hour")}, campaign_id, template_id, domain, {", ".join(f"sum({c})" for c in counters)}
FROM deltas GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (day, campaign_id, template_id, domain) DO UPDATE SET
  {", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in counters)}
"""


def _link_rollup_sql(source: str) -> str:
    return f"""
WITH lk AS (
  INSERT INTO analytics_message_link_click AS m
    (message_id, link_name, link_url, link_position, campaign_id, template_id, first_click)
  SELECT message_id, link_name, link_url, link_position, min(campaign_id), min(template_id), min(timestamp)
  FROM {source} WHERE type = 'click' AND message_id <> ''
  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ON CONFLICT (message_id, link_name, link_url, link_position) DO UPDATE SET
    prev_click = m.first_click, first_click = LEAST(m.first_click, EXCLUDED.first_click)
  RETURNING m.campaign_id, m.template_id, m.link_name, m.link_url, m.link_position, m.first_click, m.prev_click
), deltas AS (
  SELECT {_hour("timestamp")} AS hour, campaign_id, template_id, link_name, link_url, link_position,
         1 AS clicked, 0 AS unique_clicked
  FROM {source} WHERE type = 'click'
  UNION ALL
  SELECT {_hour("x.at")}, lk.campaign_id, lk.template_id, lk.link_name, lk.link_url, lk.link_position, 0, x.d
  FROM lk CROSS JOIN LATERAL (VALUES (lk.first_click, 1), (lk.prev_click, -1)) AS x(at, d)
  WHERE (lk.prev_click IS NULL OR lk.first_click < lk.prev_click) AND x.at IS NOT NULL
)
INSERT INTO analytics_link_rollup_hourly AS r
  (hour, campaign_id, template_id, link_name, link_url, link_position, clicked, unique_clicked)
SELECT hour, campaign_id, template_id, link_name, link_url, link_position, sum(clicked), sum(unique_clicked)
FROM deltas GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (hour, campaign_id, template_id, link_name, link_url, link_position) DO UPDATE SET
  clicked = r.clicked + EXCLUDED.clicked, unique_clicked = r.unique_clicked + EXCLUDED.unique_clicked
"""


# The webhook feed's positions must be commit-ordered (a webhook's cursor must never pass
# an event whose transaction has yet to commit; sequence values alone are not, as two
# landers commit in either order). A lander takes this transaction-level advisory lock
# before drawing positions and holds it until it commits, so positions are drawn one
# transaction at a time, in commit order. Taken only when some webhook is active, as late as
# possible (the last statement of the landing).
FEED_LOCK = 0x656E_6761_6765_0001  # "engage" + 1
_FEED_LOCK_SQL = f"SELECT pg_advisory_xact_lock({FEED_LOCK}) FROM analytics_webhook WHERE active LIMIT 1"


def _webhook_feed_sql(source: str) -> str:
    # Positions follow event time within a batch, so batches cut from the feed are in order.
    return f"""
INSERT INTO analytics_webhook_feed (event_pk, event_timestamp, type)
SELECT landed.id, landed.timestamp, landed.type FROM {source}
WHERE landed.id IS NOT NULL AND landed.type IN (SELECT unnest(events) FROM analytics_webhook WHERE active)
ORDER BY landed.timestamp, landed.id
"""


ROLLUP_SQL = _rollup_sql(f"{LANDED} landed")
LINK_ROLLUP_SQL = _link_rollup_sql(f"{LANDED} landed")
WEBHOOK_FEED_SQL = _webhook_feed_sql(f"{LANDED} landed")

# A tracking_event row in its staged form (``LANDED_COLUMNS``): the select list the ingest
# fills ``LANDED`` with, from the table or from an INSERT's RETURNING.
LANDED_SELECT = f"""id, timestamp, type, message_id, left(campaign_id, {KEY_MAX}), left(template_id, {KEY_MAX}),
  left(coalesce(nullif(recipient_domain, ''), lower(substring(rcpt_to from '[^@]*$'))), {DOMAIN_MAX}),
  bounce_class, left(coalesce(nullif(target_link_name, ''), target_link_url), {LINK_NAME_MAX}),
  left(coalesce(nullif(extra->>'{LINK_TEMPLATE_URL}', ''), target_link_url), {LINK_URL_MAX}),
  CASE WHEN extra->>'{LINK_POSITION}' ~ '^[0-9]{{1,5}}$' THEN (extra->>'{LINK_POSITION}')::int ELSE 0 END"""


def webhook_feed_append(cursor: Any) -> None:
    """Append the batch staged in ``LANDED`` to the webhook feed: one row per event of a type
    some active webhook wants, whatever the number of webhooks (none without an active
    webhook). Takes ``FEED_LOCK`` until the transaction ends: call it last before commit."""
    cursor.execute(_FEED_LOCK_SQL)
    if cursor.fetchone() is not None:
        cursor.execute(WEBHOOK_FEED_SQL)


def rollups_from_landed(cursor: Any) -> None:
    """Fold the batch staged in ``LANDED`` into every rollup and the webhook feed (four
    statements, whatever the batch size and the number of webhooks)."""
    cursor.execute(ROLLUP_SQL)
    cursor.execute(LINK_ROLLUP_SQL)
    webhook_feed_append(cursor)


def landed_prepare(cursor: Any) -> None:
    """Create (once per session) and empty the temp table a batch is staged in."""
    cursor.execute(_CREATE_LANDED)
    cursor.execute(f"TRUNCATE {LANDED}")


def landed_row(event: dict) -> tuple:
    """The staged form of an event dict (Event column names): only what the rollups read."""
    domain = event.get("recipient_domain") or (event.get("rcpt_to") or "").rpartition("@")[2].lower()
    url = event.get("target_link_url") or ""
    extra = event.get("extra") or {}
    if isinstance(extra, str):  # a row read back with a plain cursor holds jsonb as text
        extra = json.loads(extra)
    position = extra.get(LINK_POSITION) if isinstance(extra, dict) else None
    written = extra.get(LINK_TEMPLATE_URL) if isinstance(extra, dict) else None
    return (
        event.get("id"),
        event["timestamp"],
        event["type"],
        event.get("message_id") or "",
        (event.get("campaign_id") or "")[:KEY_MAX],
        (event.get("template_id") or "")[:KEY_MAX],
        domain[:DOMAIN_MAX],
        str(event.get("bounce_class") or ""),
        (event.get("target_link_name") or url)[:LINK_NAME_MAX],
        (written if isinstance(written, str) and written else url)[:LINK_URL_MAX],
        position if isinstance(position, int) and 0 <= position <= 99_999 else 0,
    )


def rollups_apply(cursor: Any, events: Sequence[dict]) -> None:
    """Fold newly landed events (dicts with Event column names, ``id`` included) into the
    rollup tables and the webhook feed. Call it in the transaction that inserted them,
    with ONLY the rows that insert returned (``ON CONFLICT DO NOTHING RETURNING``), so a
    re-landed batch never counts twice."""
    if not events:
        return
    landed_prepare(cursor)
    with cursor.copy(f"COPY {LANDED} ({', '.join(LANDED_COLUMNS)}) FROM STDIN") as copy:
        for event in events:
            copy.write_row(landed_row(event))
    rollups_from_landed(cursor)
