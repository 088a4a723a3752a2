"""Per-process memos of pure functions whose arguments a sender chooses.

A header value, a MIME field or a link attribute is bounded only by the message's size, so a
plain ``functools.lru_cache`` of one keeps whatever a sender makes it keep: 256 kept
Content-Type values of 4 MiB each held a gigabyte (an attacker's finding, session 20).
:class:`KeptForShortValues` keeps results only for short arguments and makes the others each
time, so what a process keeps is at most ``maxsize`` × ``max_chars`` characters of arguments
(plus their results) whatever it is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

#: An argument: a string, None, or a tuple of strings (counted together).
Argument = str | tuple[str, ...] | None


def characters(value: Any) -> int:
    """How many characters of strings ``value`` holds: a string's length, the sum over a
    tuple's or list's items and a dict's keys and values (a JSON value), 0 for anything else
    (None, numbers)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, tuple | list):
        return sum(map(characters, value))
    if isinstance(value, dict):
        return sum(characters(key) + characters(item) for key, item in value.items())
    return 0


class KeptForShortValues(Generic[_T]):
    """``made``, a pure function of :data:`Argument` values, with its results kept for the last
    ``maxsize`` distinct argument lists each of whose arguments holds at most ``max_chars``
    characters (:func:`characters`); a longer one is made each time and not kept. ``made``'s
    exceptions propagate and are never kept. ``kept``: the ``lru_cache`` (``cache_clear``,
    ``cache_info``)."""

    __slots__ = ("made", "max_chars", "kept")

    def __init__(self, made: Callable[..., _T], *, maxsize: int, max_chars: int) -> None:
        self.made = made
        self.max_chars = max_chars
        self.kept = functools.lru_cache(maxsize=maxsize)(made)

    def __call__(self, *args: Argument) -> _T:
        limit = self.max_chars
        for argument in args:
            if characters(argument) > limit:
                return self.made(*args)
        return self.kept(*args)
