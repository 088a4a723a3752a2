"""compile_content / CompiledContent: every template field of a content object."""

from __future__ import annotations

import pytest

from mailcore.language import TemplateRenderError, TemplateSyntaxError, compile_content
from tests.core.language.helpers import RecordingTracker, fake_scan_html


def test_all_parts_render_with_sparkpost_escaping_rules() -> None:
    content = {
        "from": {"email": "deals@{{domain}}", "name": "{{brand}} & Co"},
        "subject": "Hi {{name}} <3",
        "reply_to": "{{name}} <reply@x.com>",
        "text": "Hi {{name}}, https://x.com/?u={{name}}",
        "html": "<p>Hi {{name}}</p>",
        "headers": {"X-Customer": "{{id}}"},
        "attachments": [{"name": "a.txt"}],
    }
    out = compile_content(content).render({"domain": "x.com", "brand": "B", "name": "A/B", "id": 7})
    assert out == {
        "from": {"email": "deals@x.com", "name": "B & Co"},
        "subject": "Hi A/B <3",
        "reply_to": "A/B <reply@x.com>",
        "text": "Hi A/B, https://x.com/?u=A%2FB",
        "html": "<p>Hi A&#x2F;B</p>",
        "headers": {"X-Customer": "7"},
        "attachments": [{"name": "a.txt"}],
    }


def test_from_as_string_stays_a_string() -> None:
    assert compile_content({"from": "{{a}}@x.com"}).render({"a": "me"})["from"] == "me@x.com"


@pytest.mark.parametrize(
    ("content", "part", "line"),
    [
        ({"subject": "{{if}}"}, "Header:Subject", 1),
        ({"from": {"email": "a@b", "name": "{{ x + }}"}}, "Header:From", 1),
        ({"from": "{{"}, "Header:From", 1),
        ({"reply_to": "{{end}}"}, "Header:Reply-To", 1),
        ({"text": "a\n{{each}}"}, "text", 2),
        ({"html": "a\nb\n{{if name age}}{{end}}"}, "html", 3),
        ({"headers": {"X-Foo": "{{)}}"}}, "Header:X-Foo", 1),
        ({"subject": "ok", "html": "{{bad bad}}"}, "html", 1),
    ],
)
def test_syntax_errors_name_the_part_and_line(content: dict, part: str, line: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_content(content)
    assert (info.value.part, info.value.line) == (part, line)


def test_first_error_in_compile_order_wins() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_content({"html": "{{if}}", "subject": "{{if}}"})
    assert info.value.part == "Header:Subject"


def test_render_error_names_the_part() -> None:
    cc = compile_content({"subject": "ok", "text": "{{1 / n}}"})
    with pytest.raises(TemplateRenderError) as info:
        cc.render({"n": 0})
    assert info.value.part == "text"
    assert str(info.value) == "Error while rendering part text: attempt to divide by zero"


def test_scanners_and_tracker_apply_to_body_parts_only() -> None:
    content = {"subject": "https://x.com/{{a}}", "html": '<body><a href="https://x.com/{{a}}">x</a></body>'}
    cc = compile_content(content, scan_html=fake_scan_html)
    tracker = RecordingTracker()
    out = cc.render({"a": "1"}, tracker)
    assert out["subject"] == "https://x.com/1"
    assert out["html"] == '<body><img initial_open><a href="https://t.example/f/1">x</a><img open></body>'
    assert tracker.seen == ["https://x.com/1"]
