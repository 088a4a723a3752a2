"""The whole-message byte budget of ``CompiledContent.render`` (issue 11, bounded work)."""

from __future__ import annotations

import tracemalloc

import pytest

from mailcore.language import MessageTooLarge, build_context, compile_content

LOOP = "{{each big}}{{loop_var}}{{end}}"


def _context(**data):
    return build_context(
        tx_metadata={}, tx_substitution_data=data, rcpt_metadata={}, rcpt_substitution_data={},
        address_email="", address_name="", return_path="",
    )  # fmt: skip


def test_twenty_looping_headers_stop_at_the_budget_without_rendering_them_all():
    content = compile_content({"subject": "hi", "headers": {f"X-H{i}": LOOP for i in range(20)}})
    context = _context(big=["a" * 1000] * 10_000)  # 10 MB per header, 200 MB in all
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooLarge) as caught:
            content.render(context, max_bytes=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.limit == 1_000_000
    assert caught.value.part == "Header:X-H0"
    assert "1000000 bytes" in caught.value.description
    assert peak < 20_000_000


def test_the_budget_counts_every_part_and_header_together():
    content = compile_content({"subject": "s" * 400, "text": "t" * 400, "headers": {"X-A": "v" * 400}})
    assert content.render(_context(), max_bytes=1300)["headers"] == {"X-A": "v" * 400}
    with pytest.raises(MessageTooLarge) as caught:
        content.render(_context(), max_bytes=1000)
    assert caught.value.part == "Header:X-A"


def test_the_budget_counts_utf8_bytes_not_characters():
    content = compile_content({"text": "{{v}}"})
    assert content.render(_context(v="é" * 50), max_bytes=100)["text"] == "é" * 50
    with pytest.raises(MessageTooLarge):
        content.render(_context(v="é" * 51), max_bytes=100)


def test_without_a_budget_only_the_per_part_limit_applies():
    content = compile_content({"headers": {f"X-H{i}": LOOP for i in range(3)}})
    rendered = content.render(_context(big=["a" * 100] * 100))
    assert all(len(v) == 10_000 for v in rendered["headers"].values())
