"""The link hook: scans cut the source at compile time, trackers act per recipient."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailcore.language import TemplateSyntaxError, compile_part
from tests.core.language.helpers import FakeScan, FakeSpan, RecordingTracker, fake_scan_html


@dataclass
class ScanningTracker(RecordingTracker):
    def compile_dynamic(self, source: str, mode: str):
        self.dynamic_compiles += 1
        return compile_part(source, part="dyn", mode=mode, scan=fake_scan_html(source))


def compiled(source: str, mode: str = "html"):
    return compile_part(source, part="html", mode=mode, scan=fake_scan_html(source))


PAGE = (
    '<html><body class="b"><a href="https://x.com/a?u={{user}}&amp;o=1" data-msys-linkname="ban">A</a>'
    '<a href="https://x.com/static">S</a></body></html>'
)


def test_without_tracker_links_render_unchanged_and_no_pixels() -> None:
    out = compiled(PAGE).render({"user": "Jo Li"})
    assert out == (
        '<html><body class="b"><a href="https://x.com/a?u=Jo%20Li&amp;o=1">A</a>'
        '<a href="https://x.com/static">S</a></body></html>'
    )


def test_tracker_gets_rendered_url_with_entities_decoded_once() -> None:
    tracker = RecordingTracker()
    out = compiled(PAGE).render({"user": "Jo Li"}, tracker)
    assert tracker.seen == ["https://x.com/a?u=Jo%20Li&o=1", "https://x.com/static"]
    assert out == (
        '<html><body class="b"><img initial_open><a href="https://t.example/f/1">A</a>'
        '<a href="https://t.example/f/2">S</a><img open></body></html>'
    )


def test_stripped_ranges_vanish_with_tags_inside_them() -> None:
    src = '<a href="https://x.com/" data-msys-linkname="{{name}}">x</a>'
    assert compiled(src).render({"name": "n"}) == '<a href="https://x.com/">x</a>'


def test_values_inside_a_link_are_url_encoded_and_triple_braces_raw() -> None:
    src = '<a href="https://x.com/{{{path}}}?q={{q}}">x</a>'
    tracker = RecordingTracker()
    compiled(src).render({"path": "a/b", "q": "a b/c"}, tracker)
    assert tracker.seen == ["https://x.com/a/b?q=a%20b%2Fc"]


def test_link_with_statement_inside_renders_each_branch() -> None:
    src = '<a href="https://x.com/{{if vip}}vip{{else}}std{{end}}?u={{u}}">x</a>'
    part = compiled(src)
    tracker = RecordingTracker()
    assert part.render({"vip": True, "u": 1}, tracker) == '<a href="https://t.example/f/1">x</a><img open>'
    assert part.render({"u": 2}, tracker) == '<a href="https://t.example/f/2">x</a><img open>'
    assert tracker.seen == ["https://x.com/vip?u=1", "https://x.com/std?u=2"]
    assert part.render({"u": 3}) == '<a href="https://x.com/std?u=3">x</a>'


def test_links_inside_loops_are_tracked_per_iteration() -> None:
    src = '{{each items}}<a href="https://x.com/p/{{loop_var}}">x</a>\n{{end}}'
    tracker = RecordingTracker()
    compiled(src).render({"items": ["a", "b c"]}, tracker)
    assert tracker.seen == ["https://x.com/p/a", "https://x.com/p/b%20c"]


def test_block_opened_inside_a_link_and_closed_outside_is_a_syntax_error() -> None:
    src = 'line\n<a href="https://x.com/{{if a}}x">y</a>{{end}}'
    with pytest.raises(TemplateSyntaxError) as info:
        compiled(src)
    assert info.value.line == 2
    assert info.value.part == "html"


def test_end_inside_a_link_closing_an_outer_block_is_a_syntax_error() -> None:
    src = '{{if a}}<a href="https://x.com/{{end}}">y</a>'
    with pytest.raises(TemplateSyntaxError):
        compiled(src)


def test_pixels_render_only_with_the_branch_they_are_in() -> None:
    src = "{{if full}}<html><body>\nhi\n</body></html>{{else}}short{{end}}"
    part = compiled(src)
    tracker = RecordingTracker()
    assert part.render({"full": 1}, tracker) == "<html><body><img initial_open>\nhi\n<img open></body></html>"
    assert part.render({}, tracker) == "short"


def test_pixel_without_body_is_appended() -> None:
    part = compile_part("<p>hi</p>", part="html", mode="html", scan=FakeScan(open_at=9))
    assert part.render({}, RecordingTracker()) == "<p>hi</p><img open>"


def test_scan_offsets_inside_a_tag_never_split_it() -> None:
    src = "ab{{name}}cd"
    scan = FakeScan(links=(FakeSpan(3, 5),), strip=((4, 6),), open_at=5)
    part = compile_part(src, part="html", mode="html", scan=scan)
    assert part.render({"name": "N"}, RecordingTracker()) == "abN<img open>cd"


def test_text_part_links_are_tracked_without_entity_decoding() -> None:
    src = "Go to https://x.com/?a=1&amp;u={{u}} now"
    span = FakeSpan(6, src.index(" now"))
    tracker = RecordingTracker()
    out = compile_part(src, part="text", mode="text", scan=FakeScan(links=(span,))).render({"u": "a b"}, tracker)
    assert tracker.seen == ["https://x.com/?a=1&amp;u=a%20b"]
    assert out == "Go to https://t.example/f/1 now"


def test_dynamic_html_links_are_tracked_and_chunks_compiled_once() -> None:
    src = "<body>{{each picks}}{{render_dynamic_content(dynamic_html[loop_var])}}{{end}}</body>"
    data = {"picks": ["a", "a"], "u": "x y", "dynamic_html": {"a": '<a href="https://d.com/?u={{u}}">d</a>'}}
    part = compiled(src)
    tracker = ScanningTracker()
    out = part.render(data, tracker)
    assert out == (
        '<body><img initial_open><a href="https://t.example/f/1">d</a>'
        '<a href="https://t.example/f/2">d</a><img open></body>'
    )
    assert tracker.seen == ["https://d.com/?u=x%20y", "https://d.com/?u=x%20y"]
    part.render(data, tracker)
    assert tracker.dynamic_compiles == 1


def test_dynamic_content_without_compile_dynamic_is_not_tracked() -> None:
    data = {"dynamic_html": {"a": '<a href="https://d.com/?u={{u}}">d</a>'}, "u": "1"}
    tracker = RecordingTracker()
    out = compiled("{{render_dynamic_content(dynamic_html.a)}}").render(data, tracker)
    assert out == '<a href="https://d.com/?u=1">d</a><img open>'
    assert tracker.seen == []


def test_with_the_real_tracking_scanner() -> None:
    links = pytest.importorskip("mailcore.links")
    src = (
        '<html><body><a href="https://x.com/?u={{user}}&amp;a=1" data-msys-linkname="ban">x</a>'
        '<a data-msys-clicktrack="0" href="http://n.com/{{user}}">n</a></body></html>'
    )
    part = compile_part(src, part="html", mode="html", scan=links.scan_html(src))
    tracker = RecordingTracker()
    out = part.render({"user": "a b"}, tracker)
    assert tracker.seen == ["https://x.com/?u=a%20b&a=1"]
    assert out == (
        '<html><body><img initial_open><a href="https://t.example/f/1">x</a>'
        '<a href="http://n.com/a%20b">n</a><img open></body></html>'
    )
    text = 'see http://x.com/{{a}}[[data-msys-unsubscribe="1"]] ok'
    tpart = compile_part(text, part="text", mode="text", scan=links.scan_text(text))
    tracker = RecordingTracker()
    assert tpart.render({"a": "q r"}, tracker) == "see https://t.example/f/1 ok"
    assert tracker.seen == ["http://x.com/q%20r"]


@pytest.mark.parametrize(
    ("href", "decoded"),
    [
        ("https://x.com/?a=1&amp;b=2", "https://x.com/?a=1&b=2"),
        ("https://x.com/?a=1&copy=2", "https://x.com/?a=1&copy=2"),
        ("https://x.com/&#47;p", "https://x.com//p"),
        ("https://x.com/?q=&amp;amp;", "https://x.com/?q=&amp;"),
        ("https://x.com/?q=a&b", "https://x.com/?q=a&b"),
    ],
)
def test_href_entities_are_decoded_once_like_a_browser(href: str, decoded: str) -> None:
    tracker = RecordingTracker()
    compiled(f'<a href="{href}">x</a>').render({}, tracker)
    assert tracker.seen == [decoded]


class PixelsOnlyTracker(RecordingTracker):
    """Open tracking on, click tracking off: every link left as written."""

    def link(self, url: str, span: object) -> None:
        self.seen.append(url)
        return None


@pytest.mark.parametrize(
    "href",
    ["https://x.com/?a=1&amp;b=2", "https://x.com/?q=&amp;lt;b&amp;gt;", "https://x.com/{{user}}?c=&amp;copy=1",
     "https://x.com/?u={{user}}&amp;amp;v=1", "https://x.com/plain"],
)  # fmt: skip
def test_a_link_the_tracker_leaves_alone_keeps_its_exact_text(href):
    source = f'<html><body><a href="{href}">L</a> <a href="{href}">M</a></body></html>'
    tracker = PixelsOnlyTracker()
    out = compiled(source).render({"user": "jo"}, tracker)
    as_written = href.replace("{{user}}", "jo")
    assert out.count(f'href="{as_written}"') == 2
    assert tracker.seen and "<img open>" in out  # the tracker was asked, and pixels still go in
    text = compile_part(f"see {as_written} now", part="text", mode="text", scan=None)
    assert text.render({}, tracker) == f"see {as_written} now"
