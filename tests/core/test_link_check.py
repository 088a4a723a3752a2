"""The link check (mailcore/link_check.py) against the real rewriting: for every link of a
corpus, its verdict is what compiling with the scanners and rendering with a tracker does."""

from __future__ import annotations

import gc
import time

import pytest

from mailcore.language import build_context, compile_content, compile_part
from mailcore.language.errors import TemplateRenderError
from mailcore.link_check import REASONS, links_check
from mailcore.links import scan_html, scan_text

LONG = "https://example.com/" + "a" * 4100

#: (html of one link, the data, whether it is tracked, the reason when not, its target)
HTML_CORPUS = [
    ('<a href="https://example.com/x">x</a>', {}, True, None, "https://example.com/x"),
    ('<a href="HTTP://EXAMPLE.COM/x">x</a>', {}, True, None, "HTTP://EXAMPLE.COM/x"),
    (
        '<a href="https://example.com/?u={{user}}">x</a>',
        {"user": "a b/c"},
        True,
        None,
        "https://example.com/?u=a%20b%2Fc",
    ),
    ('<a href="https://example.com/?a=1&amp;b=2">x</a>', {}, True, None, "https://example.com/?a=1&b=2"),
    ('<a href="http://{{{host}}}/p">x</a>', {"host": "shop.example"}, True, None, "http://shop.example/p"),
    ('<area href="https://example.com/map">', {}, True, None, "https://example.com/map"),
    ('<a href="mailto:{{who}}">m</a>', {"who": "a@example.com"}, False, "mailto", "mailto:a@example.com"),
    ('<a href="MAILTO:a@example.com">m</a>', {}, False, "mailto", "MAILTO:a@example.com"),
    ('<a href="tel:+15550100">t</a>', {}, False, "tel", "tel:+15550100"),
    ('<a href="#top">a</a>', {}, False, "anchor", "#top"),
    ('<a href="https://example.com/o" data-msys-clicktrack="0">o</a>', {}, False, "opt_out", "https://example.com/o"),
    ("<a data-msys-clicktrack='0' href=https://example.com/o>o</a>", {}, False, "opt_out", "https://example.com/o"),
    (
        '<a href="{{{url}}}">e</a>',
        {"url": "https://example.com/e"},
        False,
        "scheme_in_expression",
        "https://example.com/e",
    ),
    ('<a href="{{base}}/e">e</a>', {"base": "https"}, False, "scheme_in_expression", "https/e"),
    (f'<a href="{LONG}">l</a>', {}, False, "too_long", LONG),
    ('<a href="ftp://example.com/f">f</a>', {}, False, "not_http", "ftp://example.com/f"),
    ('<a href="javascript:alert(1)">j</a>', {}, False, "not_http", "javascript:alert(1)"),
    ('<a href="/relative/path">r</a>', {}, False, "relative", "/relative/path"),
    ('<a href=" https://example.com/s">s</a>', {}, False, "scheme_not_literal", " https://example.com/s"),
    ('<a href="&#104;ttps://example.com/c">c</a>', {}, False, "scheme_not_literal", "https://example.com/c"),
]


def context(data: dict) -> dict:
    return build_context(
        tx_metadata={},
        tx_substitution_data=data,
        rcpt_metadata={},
        rcpt_substitution_data={},
        address_email="rcpt@example.com",
        address_name="Rcpt",
        return_path="",
    )


class Recorder:
    """The tracker protocol as generation uses it: each URL it is handed becomes a tracked one."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def link(self, url, span):
        self.urls.append(url)
        return f"https://track.test/f/{len(self.urls)}"

    def pixel(self, kind):
        return ""

    def compile_dynamic(self, source, mode):  # as transmissions.generation.MessageTracker does
        return compile_part(
            source, part="dynamic", mode=mode, scan=scan_text(source) if mode == "text" else scan_html(source)
        )


def rewrite(content: dict, data: dict) -> tuple[dict, list[str]]:
    """The real path: compile with the scanners once, render with a tracker."""
    recorder = Recorder()
    compiled = compile_content(content, scan_html=scan_html, scan_text=scan_text)
    return compiled.render(context(data), recorder), recorder.urls


def agree(content: dict, data: dict, *, click_tracking: bool = True) -> list:
    """The check's verdicts, after asserting they agree with the real rewriting: the tracked
    URLs are exactly the ones the tracker was handed, in order, and every untracked link's
    target is left in the rendered part as it is."""
    checks = links_check(content, context(data), click_tracking=click_tracking)
    rendered, handed = rewrite(content, data)
    rendered_links = [check for check in checks if check.reason != "not_rendered"]
    would_track = [check.url for check in rendered_links if check.tracked or check.reason == "click_tracking_off"]
    assert would_track == [url for url in handed]
    for check in rendered_links:
        if not check.tracked and check.reason != "click_tracking_off" and check.origin != "substitution_value":
            assert check.url in _decoded(rendered[check.part])
    return checks


def _decoded(part: str) -> str:
    from mailcore.links import unescape_attribute

    return part + unescape_attribute(part)


@pytest.mark.parametrize(("link", "data", "tracked", "reason", "url"), HTML_CORPUS)
def test_each_html_link_verdict_is_what_the_rewriting_does(link, data, tracked, reason, url):
    checks = agree({"html": f"<p>before</p>\n{link}\n<p>after</p>"}, data)
    assert len(checks) == 1
    check = checks[0]
    assert (check.tracked, check.reason, check.url) == (tracked, reason, url)
    assert (check.part, check.position, check.line, check.origin) == ("html", 0, 2, "template")


def test_the_whole_corpus_in_one_part_keeps_order_and_positions():
    html = "\n".join(link for link, *_ in HTML_CORPUS)
    data: dict = {}
    for _link, case_data, *_ in HTML_CORPUS:
        data.update(case_data)
    data["base"] = "https"
    checks = agree({"html": html}, data)
    assert [check.position for check in checks] == list(range(len(HTML_CORPUS)))
    assert [check.tracked for check in checks] == [case[2] for case in HTML_CORPUS]
    assert [check.reason for check in checks] == [case[3] for case in HTML_CORPUS]
    assert [check.line for check in checks] == list(range(1, len(HTML_CORPUS) + 1))


def test_text_links_tracked_opted_out_and_too_long():
    text = (
        "Start https://example.com/t?u={{user}}.\n"
        'No https://example.com/o[[data-msys-clicktrack="0"]]\n'
        'Named https://example.com/n[[data-msys-linkname="named"]]\n'
        f"Long {LONG}\n"
        "Mail mailto:a@example.com is not a text link\n"
    )
    checks = agree({"text": text}, {"user": "a b"})
    assert [(c.url[:40], c.tracked, c.reason, c.link_name, c.line) for c in checks] == [
        ("https://example.com/t?u=a%20b", True, None, "Raw URL", 1),
        ("https://example.com/o", False, "opt_out", "Raw URL", 2),
        ("https://example.com/n", True, None, "named", 3),
        (LONG[:40], False, "too_long", None, 4),
    ]


def test_link_names_are_the_scanners():
    html = (
        '<a href="https://example.com/1" data-msys-linkname="banner">1</a>'
        '<a href="https://example.com/2" title="Title">2</a>'
        '<a href="https://example.com/3"><img src="x.png" alt="Logo"></a>'
        '<a href="https://example.com/4">4</a>'
    )
    checks = agree({"html": html}, {})
    assert [check.link_name for check in checks] == ["banner", "Title", "Logo", "Raw URL"]


def test_a_link_in_a_block_that_renders_nothing_is_listed_as_not_rendered():
    html = '{{if show}}<a href="https://example.com/hidden">h</a>{{end}}<a href="https://example.com/v">v</a>'
    checks = agree({"html": html}, {"show": False})
    assert [(c.position, c.url, c.tracked, c.reason) for c in checks] == [
        (1, "https://example.com/v", True, None),
        (0, "https://example.com/hidden", False, "not_rendered"),
    ]


def test_a_loop_gives_one_result_per_copy_with_the_same_position():
    html = '{{each items}}<a href="https://example.com/i/{{loop_var}}">i</a>\n{{end}}'
    checks = agree({"html": html}, {"items": ["a", "b", "c"]})
    assert [(c.position, c.url, c.link_position) for c in checks] == [
        (0, f"https://example.com/i/{x}", 1) for x in "abc"
    ]


def test_link_position_counts_tracked_links_only_each_part_from_1():
    """``link_position`` is what the click token carries (``LinkSpan.position``): the mailto
    link and the hidden link are not counted, the text part starts again at 1."""
    html = (
        '<a href="https://example.com/pricing">p</a><a href="mailto:s@example.com">m</a>'
        '{{if no}}<a href="https://example.com/hidden">h</a>{{end}}<a href="https://example.com/pricing">p</a>'
    )
    checks = agree({"html": html, "text": "https://example.com/pricing"}, {"no": False})
    assert [(c.part, c.position, c.link_position, c.reason) for c in checks] == [
        ("html", 0, 1, None),
        ("html", 1, None, "mailto"),
        ("html", 3, 3, None),
        ("html", 2, None, "not_rendered"),
        ("text", 0, 1, None),
    ]


def test_links_from_substitution_values_are_listed_and_never_tracked():
    data = {"chunk": '<a href="https://example.com/v">v</a>', "url": "https://example.com/t"}
    checks = agree({"html": "{{{chunk}}}", "text": "See {{url}}"}, data)
    assert [(c.part, c.url, c.tracked, c.reason, c.origin, c.position) for c in checks] == [
        ("html", "https://example.com/v", False, "substitution_value", "substitution_value", None),
        ("text", "https://example.com/t", False, "substitution_value", "substitution_value", None),
    ]


def test_dynamic_content_links_are_tracked_like_the_generator_tracks_them():
    data = {
        "dynamic_html": {
            "box": '<a href="https://example.com/d?u={{user}}">d</a> <a href="mailto:x@example.com">m</a>'
        },
        "user": "u1",
    }
    checks = agree({"html": "<p>{{render_dynamic_content(dynamic_html.box)}}</p>"}, data)
    assert [(c.url, c.tracked, c.reason, c.origin, c.link_position) for c in checks] == [
        ("https://example.com/d?u=u1", True, None, "dynamic_content", 1),
        ("mailto:x@example.com", False, "mailto", "dynamic_content", None),
    ]


def test_amp_links_are_never_tracked():
    content = {"html": '<a href="https://example.com/h">h</a>', "amp_html": '<a href="https://example.com/a">a</a>'}
    checks = agree(content, {})
    assert [(c.part, c.tracked, c.reason) for c in checks] == [("html", True, None), ("amp_html", False, "amp_part")]


def test_with_click_tracking_off_nothing_is_tracked_and_the_reason_says_so():
    checks = agree({"html": '<a href="https://example.com/h">h</a><a href="tel:1">t</a>'}, {}, click_tracking=False)
    assert [(c.tracked, c.reason) for c in checks] == [(False, "click_tracking_off"), (False, "tel")]


def test_links_in_comments_and_scripts_are_not_links():
    html = '<!-- <a href="https://example.com/c">c</a> --><script>"<a href=\'https://x.example\'>"</script>'
    assert agree({"html": html}, {}) == []


def test_hostile_markup_never_breaks_the_check():
    for html in ['<a href="', "<a href='https://x.example/{{", '<a href="https://x.example/\x00">', "<a href=>", "{{"]:
        try:
            agree({"html": html, "text": html}, {})
        except Exception as exc:  # only the language's own errors
            assert type(exc).__name__ in {"TemplateSyntaxError", "TemplateRenderError"}


def test_nuls_that_look_like_markers_never_break_the_check():
    fake = "\x00t7\x00 \x00u99\x00https://x.example\x00/\x00 \x00t99999999999999999999\x00"
    html = f'<a href="https://example.com/{fake}">x</a> {fake}'
    checks = links_check({"html": html, "text": fake}, context({"v": fake}), click_tracking=True)
    assert checks[0].tracked and checks[0].position == 0


def test_a_render_error_is_the_languages():
    with pytest.raises(TemplateRenderError):
        links_check({"html": "{{ 1 / 0 }}"}, context({}), click_tracking=True)


def test_every_reason_has_a_sentence():
    assert all(REASONS.values())


def _check_seconds(links: int, *, between: str) -> float:
    html = f'<a href="https://e.com/{{{{u}}}}" data-msys-linkname="n">x</a>{between}' * links
    gc.disable()  # a collection of a larger heap costs more: that growth is not the check's
    try:
        started = time.perf_counter()
        checks = links_check({"html": html}, context({"u": "v"}), click_tracking=True)
        seconds = time.perf_counter() - started
    finally:
        gc.enable()
    assert len(checks) == links
    return seconds


@pytest.mark.slow
@pytest.mark.parametrize("between", ["\n", ""], ids=["a line each", "all on one line"])
def test_the_check_grows_linearly_with_the_links(between):
    """``lexer.cut`` once walked every cut for every text piece (and every stripped range for
    every item; each ``data-msys-*`` attribute is one): 10,000 links took 7 s, 4 times the links
    13 times as long. ``lexer.mark_url_context`` re-read a line up to each of its tags: 8,000
    links on one line took 34 s, 4 times the links 24 times as long. Four times the links must
    take under 4 times as long, with a 1.75 margin for a loaded machine (quadratic work is 16
    times). The small and large runs alternate and each keeps its best of three, so a busy
    moment on a shared CI machine slows both alike or neither."""
    small = large = float("inf")
    for _ in range(3):
        small = min(small, _check_seconds(4000, between=between))
        large = min(large, _check_seconds(16000, between=between))
    assert large < 4 * small * 1.75, (small, large)
