"""``mailcore.memo.KeptForShortValues``: results kept for short arguments only, whatever a
sender makes the arguments (every per-process memo of sender-chosen values uses it)."""

from __future__ import annotations

import pytest

from mailcore.memo import KeptForShortValues


def _counting():
    calls: list[tuple] = []

    def made(*args):
        calls.append(args)
        if args and args[0] == "bad":
            raise ValueError("refused")
        return "|".join("-" if arg is None else "+".join(arg) if isinstance(arg, tuple) else arg for arg in args)

    return calls, made


def test_short_arguments_are_made_once_and_long_ones_every_time():
    calls, made = _counting()
    memo = KeptForShortValues(made, maxsize=8, max_chars=5)
    assert memo("abc", None) == memo("abc", None) == "abc|-"
    assert memo(("ab", "cd")) == memo(("ab", "cd")) == "ab+cd"  # 4 characters together: kept
    assert memo(("abc", "def")) == memo(("abc", "def")) == "abc+def"  # 6 together: made each time
    assert memo("abc", "toolong") == memo("abc", "toolong")  # one argument over: made each time
    assert calls == [("abc", None), (("ab", "cd"),), *[(("abc", "def"),)] * 2, *[("abc", "toolong")] * 2]
    assert memo.kept.cache_info().currsize == 2


def test_a_refusal_is_raised_every_time_and_never_kept():
    calls, made = _counting()
    memo = KeptForShortValues(made, maxsize=8, max_chars=5)
    for _ in range(2):
        with pytest.raises(ValueError, match="refused"):
            memo("bad")
    assert len(calls) == 2 and memo.kept.cache_info().currsize == 0


def test_only_the_last_maxsize_are_kept():
    calls, made = _counting()
    memo = KeptForShortValues(made, maxsize=2, max_chars=5)
    for value in ("a", "b", "c", "a"):
        memo(value)
    assert [args[0] for args in calls] == ["a", "b", "c", "a"]
