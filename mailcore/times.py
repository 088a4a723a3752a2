"""PURE: the one rule for the UTC offset of a time Engage reads from a client.

Python accepts offsets up to ±23:59:59; PostgreSQL's ``timestamptz`` only within ±15:59:59
("time zone displacement out of range"), and psycopg sends an aware datetime with its own
offset. A time whose offset lies beyond that is refused where it is read (each caller's
error names the parameter), never left to fail in the database as a 500. Every real time
zone lies within -12:00..+14:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["MAX_UTC_OFFSET", "offset_problem"]

#: The largest UTC offset (either sign) PostgreSQL accepts in a ``timestamptz``.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59, seconds=59)


def offset_problem(value: datetime) -> str | None:
    """Why ``value``'s UTC offset cannot be used, or None (a naive value has none)."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return "its UTC offset must lie within -15:59 and +15:59"
    return None
