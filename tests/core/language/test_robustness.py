"""Arbitrary template text only ever fails with TemplateSyntaxError / TemplateRenderError."""

from __future__ import annotations

import random

from mailcore.language import TemplateError, compile_part

PIECES = [
    "{{",
    "}}",
    "{{{",
    "}}}",
    "if ",
    "each ",
    "end",
    "else",
    "elseif ",
    "a",
    "b.c",
    "[1]",
    "['x']",
    "(",
    ")",
    " or ",
    " and ",
    "not ",
    "#",
    "+",
    "-",
    "*",
    "/",
    "==",
    "<",
    "'s'",
    '"t"',
    "1",
    "2.5",
    "\n",
    "\r\n",
    " ",
    "loop_var",
    "loop_vars.a",
    "loop_index",
    "render_dynamic_content(dynamic_html.a)",
    "empty(a)",
    "https://x.com/",
    '<a href="',
    '">',
    "{{if a}}",
    "{{end}}",
    "{{each a}}",
    "nil",
    "true",
    "..",
    " then",
    "~=",
    "%",
    "{ {",
]
DATA = {"a": [1, "x", {"c": 2}], "b": {"c": [1, 2]}, "x": None, "dynamic_html": {"a": "<b>{{a[1]}}</b>"}}


def test_random_templates_fail_only_with_template_errors() -> None:
    rng = random.Random(1)
    compiled = 0
    for _ in range(3000):
        source = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25)))
        for mode in ("html", "text", "header"):
            try:
                part = compile_part(source, part="p", mode=mode)
            except TemplateError:
                continue
            compiled += 1
            try:
                assert isinstance(part.render(DATA), str)
            except TemplateError:
                pass
    assert compiled > 100
