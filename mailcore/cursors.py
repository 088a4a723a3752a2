"""PURE: the opaque keyset-paging cursor of the search APIs (events search, suppression list):
the last row's ``(timestamp, id)`` as URL-safe base64 of a JSON pair, so a page starts after
a row, never at an offset (SPEC B §6.5 ``cursor``, B §11 ``cursor``)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from mailcore.times import offset_problem

__all__ = ["cursor_decode", "cursor_encode"]

_MAX_ID = 2**63  # a PostgreSQL bigint


def cursor_encode(timestamp: datetime, pk: int) -> str:
    """The cursor after the row stamped ``timestamp`` (timezone-aware) with id ``pk``."""
    raw = json.dumps([timestamp.isoformat(), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(
    token: str, *, earliest: datetime | None = None, latest: datetime | None = None
) -> tuple[datetime, int]:
    """``(timestamp, id)`` from a cursor :func:`cursor_encode` made. Raises ``ValueError`` for
    anything else: not base64 or JSON, a naive or unparsable time, a UTC offset beyond
    ±15:59 (``mailcore.times``), an id outside 1 to 2^63-1,
    or a time outside ``earliest``..``latest`` when given (the callers' own error names the
    parameter)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, pk = json.loads(raw)
        value = datetime.fromisoformat(stamp)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor") from None
    if value.tzinfo is None or offset_problem(value) or type(pk) is not int or not 0 < pk < _MAX_ID:
        raise ValueError("not a cursor")
    try:
        utc = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("not a cursor") from None
    if (earliest is not None and utc < earliest) or (latest is not None and utc > latest):
        raise ValueError("not a cursor")
    return value, pk
