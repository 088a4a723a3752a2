"""PURE: an event row (Event column names) in SparkPost's flat shape (SPEC B §6.2, §6.3)
for the events APIs, and in the ``{"msys": {<category>: {...}}}`` record for webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, cast

from mailcore.events import BY_NAME, CATEGORIES, OPTIONAL_FIELDS

COMMON = (
    "type", "event_id", "timestamp", "message_id", "transmission_id", "campaign_id", "template_id",
    "template_version", "rcpt_to", "raw_rcpt_to", "recipient_domain", "rcpt_meta", "rcpt_tags",
    "friendly_from", "subject", "transactional",
)  # fmt: skip


def event_flat(row: dict[str, Any], *, tz: tzinfo = UTC, unix: bool = False) -> dict[str, Any]:
    """The event as SparkPost shows it: type-relevant fields always, other fields only when
    set, ``transactional`` as ``"1"``/``"0"``, ids as strings, ``extra`` merged in (never
    over a column). ``timestamp`` is ISO 8601 with offset in ``tz``, or Unix seconds. The
    type-relevant fields are ``mailcore.events.EventType.fields``, the others
    ``mailcore.events.OPTIONAL_FIELDS``: a field added there is shown with no change here."""
    kind = BY_NAME.get(row["type"])
    relevant = kind.fields if kind is not None else ()
    out: dict[str, Any] = {}
    for name in COMMON:
        value = row.get(name)
        if name == "timestamp":
            stamp = cast(datetime, value)
            value = int(stamp.timestamp()) if unix else stamp.astimezone(tz).isoformat(timespec="milliseconds")
        elif name == "transactional":
            value = "1" if value else "0"
        elif value is None:
            value = {} if name == "rcpt_meta" else [] if name == "rcpt_tags" else ""
        out[name] = value
    for name in OPTIONAL_FIELDS:
        value = row.get(name) or ""
        if value or name in relevant:
            out[name] = str(value)
    for key, value in (row.get("extra") or {}).items():
        out.setdefault(key, value)
    return out


def event_record(row: dict[str, Any]) -> dict[str, Any]:
    """The webhook record ``{"msys": {<category>: {...}}}`` with a Unix timestamp (integer)."""
    category = CATEGORIES.get(row["type"], "message_event")
    return {"msys": {category: event_flat(row, unix=True)}}
