"""Template ids (mailcore/ids.py): a slug from the name, the next free suffix. No database."""

from __future__ import annotations

import pytest

from mailcore.ids import first_free_id, slug_from_name


@pytest.mark.parametrize(
    "name, slug",
    [("Summer Sale!", "summer-sale"), ("  --Ünïcode  ", "unicode"), ("!!!", "fallback"), ("A" * 100, "a" * 56)],
)
def test_slug_from_name(name, slug):
    assert slug_from_name(name, fallback="fallback") == slug


def test_first_free_id_appends_the_next_suffix():
    assert first_free_id("x", taken=lambda base: set()) == "x"
    assert first_free_id("x", taken=lambda base: {"x", "x-2", "x-4"}) == "x-3"
