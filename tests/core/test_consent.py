"""Tracking consent (mailcore/consent.py, SPEC A.5): a register ``denied`` wins; otherwise the
recipient object, then the register, then the default; a value that is neither granted nor
denied counts as not given. The state in force at a hit's time. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailcore.consent import consent_at, tracking_consented


@pytest.mark.parametrize(
    "recipient, register, default, tracked",
    [
        ("granted", "denied", "denied", False),
        ("granted", "denied", "granted", False),
        ("granted", None, "denied", True),
        ("granted", "granted", "denied", True),
        ("denied", "granted", "granted", False),
        (None, "denied", "granted", False),
        (None, "granted", "denied", True),
        (None, None, "denied", False),
        (None, None, "granted", True),
        ("maybe", "denied", "granted", False),
        ("", None, "denied", False),
    ],
)
def test_a_register_denial_wins_then_the_first_value_given(recipient, register, default, tracked):
    assert tracking_consented(recipient=recipient, register=register, default=default) is tracked


def test_nothing_given_is_tracked_as_sparkpost_does():
    assert tracking_consented(recipient=None, register=None, default="") is True


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TIMELINE = [(T0, "granted"), (T0 + timedelta(hours=1), "denied"), (T0 + timedelta(hours=1), "granted"),
            (T0 + timedelta(hours=2), "denied")]  # fmt: skip


@pytest.mark.parametrize(
    "at, state",
    [
        (T0 - timedelta(seconds=1), None),
        (T0, "granted"),
        (T0 + timedelta(minutes=59), "granted"),
        (T0 + timedelta(hours=1), "granted"),  # two records at one instant: the later one
        (T0 + timedelta(hours=2), "denied"),
        (T0 + timedelta(days=9), "denied"),
    ],
)
def test_the_state_in_force_at_a_hit_is_the_last_recorded_before_it(at, state):
    assert consent_at(TIMELINE, at) == state
