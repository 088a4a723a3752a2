"""No I/O: the query string of ``GET /api/v1/suppression-list`` (SPEC A.5, B §11.4-11.5) as a
``SearchQuery``, and the cursor codec.

- ``from`` / ``to``: inclusive bounds on ``updated``; ``YYYY-MM-DDTHH:MM`` with optional
  seconds, fraction, ``Z`` or an offset (``+hhmm`` or ``+hh:mm``, within ±15:59:
  ``mailcore.times``); UTC when none is given. An
  unencoded ``+`` arrives as a space, so a space before a 4-digit or ``hh:mm`` offset is read
  as ``+``.
- ``types`` / ``sources``: comma lists, repeated keys (python-sparkpost) or ``types[0]=``
  (node-sparkpost's ``qs``), in any mix. Sources match case-insensitively, by name
  (``Bounce Rule``) or summary key (``bounce_rule``).
- ``per_page`` 1-10,000 (default 1,000); ``limit``, the legacy name, is its alias
  (``per_page`` wins when both are given). ``sort`` ``desc`` (default) or ``asc`` on ``updated``.
- ``cursor``: absent or ``initial`` for the first page, else the one ``links`` gave.

Errors are ``ParamError`` naming the parameter (the view answers 400 / 1200).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mailcore.cursors import cursor_decode as mailcore_cursor_decode
from mailcore.times import offset_problem
from suppression.models import SuppressionSource, SuppressionType, summary_key

TYPES: tuple[str, ...] = tuple(SuppressionType.values)
SOURCES: tuple[str, ...] = tuple(SuppressionSource.values)
DEFAULT_PER_PAGE = 1000
MAX_PER_PAGE = 10_000
MAX_LIST_VALUES = 64

_BRACKETED = re.compile(r"^(?P<name>\w+)\[\d*\]$")
_SPACE_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?) (\d{2}:?\d{2})$")
_SOURCE_NAMES = {name.lower(): name for name in SOURCES} | {summary_key(name): name for name in SOURCES}


class ParamError(ValueError):
    """A query parameter that cannot be used; the message names it."""


@dataclass(frozen=True)
class SearchQuery:
    start: datetime | None = None
    end: datetime | None = None
    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    description: str | None = None
    per_page: int = DEFAULT_PER_PAGE
    ascending: bool = False
    after: tuple[datetime, int] | None = None  # keyset: rows past this (updated, id) in the sort order


def parse_when(raw: str, name: str) -> datetime:
    """An aware datetime from ``raw`` (see the module docstring); raises ParamError."""
    text = raw.strip()
    spaced = _SPACE_OFFSET.match(text)
    if spaced:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value.astimezone(UTC)
    except (ValueError, OverflowError):
        shown = raw if len(raw) <= 64 else raw[:64] + "..."
        raise ParamError(f"{name} must be a valid date (YYYY-MM-DDTHH:MM[:SS][+HH:MM]), got '{shown}'") from None
    if (problem := offset_problem(value)) is not None:
        raise ParamError(f"{name}: {problem}, got '{raw[:64]}'")
    return value


def list_values(pairs: Iterable[tuple[str, str]], name: str) -> tuple[str, ...]:
    """Every value given for the list parameter ``name`` (``name``, ``name[]``, ``name[N]``),
    comma lists split, blanks dropped, in the order given, each once."""
    values: list[str] = []
    for key, value in pairs:
        bracketed = _BRACKETED.match(key)
        if key == name or (bracketed and bracketed.group("name") == name):
            values.extend(item.strip() for item in value.split(",") if item.strip())
    if len(values) > MAX_LIST_VALUES:
        raise ParamError(f"{name} may hold at most {MAX_LIST_VALUES} values")
    return tuple(dict.fromkeys(values))


def _types(values: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [value for value in values if value not in TYPES]
    if unknown:
        raise ParamError(f"types: unknown type '{unknown[0][:64]}'; use transactional or non_transactional")
    return values


def _sources(values: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for value in values:
        source = _SOURCE_NAMES.get(value.lower())
        if source is None:
            raise ParamError(f"sources: unknown source '{value[:64]}'; known: {', '.join(SOURCES)}")
        found.append(source)
    return tuple(dict.fromkeys(found))


def cursor_decode(token: str) -> tuple[datetime, int]:
    """``(timestamp, id)`` of a cursor this API returned; ParamError (400) for anything else."""
    try:
        return mailcore_cursor_decode(token)
    except ValueError:
        raise ParamError("cursor is not a cursor this API returned (follow the links as given)") from None


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(f"{name} must be an integer, got '{raw[:64]}'") from None
    if not 1 <= value <= MAX_PER_PAGE:
        raise ParamError(f"{name} must be between 1 and {MAX_PER_PAGE}")
    return value


def parse_search(pairs: list[tuple[str, str]]) -> SearchQuery:
    """The search ``pairs`` (every key and value of the query string, in order) as a SearchQuery."""
    params = {key: value for key, value in pairs}  # the last value of a repeated single parameter
    start = parse_when(params["from"], "from") if params.get("from", "").strip() else None
    end = parse_when(params["to"], "to") if params.get("to", "").strip() else None
    if start is not None and end is not None and start > end:
        raise ParamError("from must not be after to")
    sort = params.get("sort", "").strip().lower() or "desc"
    if sort not in ("asc", "desc"):
        raise ParamError(f"sort must be asc or desc, got '{sort[:64]}'")
    per_page = _int(params, "per_page") or _int(params, "limit") or DEFAULT_PER_PAGE
    token = params.get("cursor", "").strip()
    return SearchQuery(
        start=start,
        end=end,
        types=_types(list_values(pairs, "types")),
        sources=_sources(list_values(pairs, "sources")),
        description=params.get("description") or None,
        per_page=per_page,
        ascending=sort == "asc",
        after=None if token in ("", "initial") else cursor_decode(token),
    )
