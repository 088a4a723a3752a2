"""Template ids (mailcore/ids.py): a slug from the name, the next free suffix. No database."""

from __future__ import annotations

import pytest

from mailcore.ids import first_free_id, slug_from_name, smtp_template_id, smtp_template_transmission


@pytest.mark.parametrize(
    "name, slug",
    [("Summer Sale!", "summer-sale"), ("  --Ünïcode  ", "unicode"), ("!!!", "fallback"), ("A" * 100, "a" * 56)],
)
def test_slug_from_name(name, slug):
    assert slug_from_name(name, fallback="fallback") == slug


def test_first_free_id_appends_the_next_suffix():
    assert first_free_id("x", taken=lambda base: set()) == "x"
    assert first_free_id("x", taken=lambda base: {"x", "x-2", "x-4"}) == "x-3"


def test_an_smtp_injection_s_template_id_names_its_transmission_and_reads_back():
    assert smtp_template_id(10000000000000042) == "smtp_10000000000000042"
    assert smtp_template_transmission("smtp_10000000000000042") == 10000000000000042
    for other in ("inline", "smtp_", "smtp_x", "SMTP_1", "smtp_1 ", "smtp_" + "9" * 20, "my-smtp_1"):
        assert smtp_template_transmission(other) is None, other
