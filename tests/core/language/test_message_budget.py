"""The whole-message byte budget of ``CompiledContent.render`` (issue 11, bounded work)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from mailcore.language import MessageTooLarge, TemplateRenderError, build_context, compile_content
from mailcore.language.compiler import RenderLimits
from mailcore.rfc822 import compile_message

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


# The loop budget is the message's too: an attacker's 16,000 headers, each two nested loops
# of 315 under the per-part limit, took ~160 s a message (over the 120 s claim timeout: the
# message was claimed again while it rendered, and sent several times).
NESTED = "{{each big}}{{each big}}x{{end}}{{end}}"


def test_loops_of_every_part_and_header_count_against_one_message_budget():
    content = compile_content({"subject": "hi", "headers": {f"X-H{i}": NESTED for i in range(20)}})
    context = _context(big=list(range(100)))  # 10,100 iterations a header (100 outer), 202,000 in all
    started = time.process_time()
    with pytest.raises(TemplateRenderError, match="too many loop iterations") as caught:
        content.render(context)
    assert caught.value.part == "Header:X-H9"  # nine headers spend 90,900 of the 100,000
    assert time.process_time() - started < 5
    # the same headers within the budget render, and a message's budget is its own
    assert len(content.render(_context(big=list(range(50))))["headers"]) == 20
    assert len(content.render(_context(big=list(range(50))))["headers"]) == 20


def test_an_email_rfc822_message_shares_one_loop_budget_between_headers_and_bodies():
    source = "From: a@b.test\nSubject: {{each big}}{{each big}}x{{end}}{{end}}\n\n" + NESTED + "\n"
    compiled = compile_message(source)
    assert compiled.render({"big": list(range(200))}) is not None  # 40,000 + 40,000
    with pytest.raises(TemplateRenderError, match="too many loop iterations") as caught:
        compiled.render({"big": list(range(250))})  # 62,500 + 62,500
    assert caught.value.part != "Header:Subject"  # the subject alone fits; the body runs out


def test_a_part_rendered_alone_keeps_its_own_limit():
    part = compile_content({"text": NESTED}).text
    assert part is not None
    assert len(part.render({"big": list(range(300))})) == 90_000  # under 100,000 on its own
    assert len(part.render({"big": list(range(300))}, limits=RenderLimits().for_message())) == 90_000
