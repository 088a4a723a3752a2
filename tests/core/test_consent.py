"""Tracking consent precedence (mailcore/consent.py, SPEC A.5): the recipient object, then
the register, then the default; a value that is neither granted nor denied counts as not
given. No database."""

from __future__ import annotations

import pytest

from mailcore.consent import tracking_consented


@pytest.mark.parametrize(
    "recipient, register, default, tracked",
    [
        ("granted", "denied", "denied", True),
        ("denied", "granted", "granted", False),
        (None, "denied", "granted", False),
        (None, "granted", "denied", True),
        (None, None, "denied", False),
        (None, None, "granted", True),
        ("maybe", "denied", "granted", False),
        ("", None, "denied", False),
    ],
)
def test_the_first_value_given_wins(recipient, register, default, tracked):
    assert tracking_consented(recipient=recipient, register=register, default=default) is tracked


def test_nothing_given_is_tracked_as_sparkpost_does():
    assert tracking_consented(recipient=None, register=None, default="") is True
