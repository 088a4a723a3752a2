"""Which expression tags sit inside a literal URL (``lexer.mark_url_context``): the same answer
as the first, quadratic, reading of each line up to each tag, on any text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mailcore.language.lexer import _TAG_RUN_RE, _URL_STOP, LexError, Tag, lex, mark_url_context

PIECES = st.sampled_from([
    "http://", "HTTPS://", "hTtP://", "https:/", "http", "://", "a", "x", "é", " ", "\t", "\n", "\r\n", '"', "'",
    "<", ">", "/", "{{a}}", "{{{b}}}", "{{ 'x}}y' }}", "{{#if c}}", "{{/if}}", "{{ d }}", "{", "}", "}}",
])  # fmt: skip


def reference(source: str, items: list) -> list[bool]:
    """The first reading: each tag re-reads its line up to itself (quadratic)."""
    flags = []
    for it in items:
        if not isinstance(it, Tag) or it.keyword is not None:
            continue
        seg = source[source.rfind("\n", 0, it.start) + 1 : it.start]
        seg = _TAG_RUN_RE.sub("x", seg)
        low = seg.lower()
        i = max(low.rfind("http://"), low.rfind("https://"))
        flags.append(i >= 0 and not any(c in _URL_STOP for c in seg[i:]))
    return flags


def marked(source: str) -> list[bool]:
    items = lex(source)
    mark_url_context(source, items)
    return [it.url for it in items if isinstance(it, Tag) and it.keyword is None]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40).map("".join))
def test_every_tag_is_marked_as_the_line_by_line_reading_marks_it(source):
    try:
        items = lex(source)
    except LexError:
        assume(False)
    assert marked(source) == reference(source, items)


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        ('<a href="https://e.com/{{u}}">{{v}}</a>', [True, False]),
        ("see http://e.com/{{a}}{{b}} and {{c}}", [True, True, False]),
        ("HTTP://E.COM/?q={{a}}\n{{b}}", [True, False]),
        ("http://e.com/{{ 'x y' }}/{{b}}", [True, True]),  # a tag's own text is no stop
        ("{{a}} http://e.com/{{b}}", [False, True]),
    ],
)
def test_examples(source, flags):
    assert marked(source) == flags
