from __future__ import annotations

import pytest

from mailcore.links import LinkSpan, Scan, pixel_html, rewrite_html, rewrite_text, scan_html, scan_text


def _mark(url: str, span: LinkSpan) -> str:
    return f"T({url})"


def _urls(html: str) -> list[str]:
    return [html[link.start : link.end] for link in scan_html(html).links]


def _names(html: str) -> list[str]:
    return [link.name for link in scan_html(html).links]


# --- which hrefs are links -------------------------------------------------------------


@pytest.mark.parametrize(
    "href",
    ["http://example.com", "https://example.com/a", "HTTP://EXAMPLE.COM", "HtTpS://x.y/", "http://{{{host}}}/p"],
)
def test_http_and_https_hrefs_of_a_are_links_in_any_case(href):
    assert _urls(f'<a href="{href}">x</a>') == [href]


@pytest.mark.parametrize(
    "href",
    [
        "mailto:a@example.com",
        "tel:+123",
        "#top",
        "/relative/path",
        "relative.html",
        "//example.com/x",
        "ftp://example.com",
        " http://leading-space.com",
        "&#104;ttp://encoded-scheme.com",
        "{{{full_url}}}",
        "http:/one-slash.com",
        "javascript:alert(1)",
    ],
)
def test_non_http_hrefs_are_left_alone(href):
    html = f'<a href="{href}" data-msys-linkname="n">x</a>'
    assert scan_html(html).links == ()
    assert rewrite_html(html, _mark) == f'<a href="{href}">x</a>'


def test_area_href_is_a_link_and_other_tags_are_not():
    html = '<area href="http://a.com"><link href="http://l.com"><img src="http://i.com"><base href="http://b.com">'
    assert _urls(html) == ["http://a.com"]


def test_clicktrack_zero_leaves_link_alone_but_strips_the_attribute():
    html = '<a href="http://x.com" data-msys-clicktrack="0">x</a> <a href="http://y.com" data-msys-clicktrack="1">y</a>'
    assert rewrite_html(html, _mark) == '<a href="http://x.com">x</a> <a href="T(http://y.com)">y</a>'


def test_first_href_wins_like_browsers():
    assert _urls('<a href="http://first.com" href="http://second.com">x</a>') == ["http://first.com"]


def test_url_over_4096_bytes_is_not_a_link():
    ok = "http://x.com/" + "a" * (4096 - 13)
    too_long = ok + "a"
    assert _urls(f'<a href="{ok}">x</a>') == [ok]
    assert _urls(f'<a href="{too_long}">x</a>') == []
    assert scan_text(too_long).links == ()
    assert len(scan_text(ok).links) == 1


def test_url_length_limit_counts_utf8_bytes():
    url = "http://x.com/" + "é" * 2042  # 13 + 4084 bytes
    assert _urls(f'<a href="{url}">x</a>') == []


# --- tokenizer -----------------------------------------------------------------------


def test_uppercase_tags_and_attributes():
    assert _urls('<A HREF="http://x.com" TITLE="T">x</A>') == ["http://x.com"]
    assert _names('<A HREF="http://x.com" TITLE="T">x</A>') == ["T"]


def test_unquoted_single_quoted_and_spaced_attributes():
    html = '<a href=http://a.com/x?y=1>a</a><a href=\'http://b.com/"q"\'>b</a><a href = "http://c.com" >c</a>'
    assert _urls(html) == ["http://a.com/x?y=1", 'http://b.com/"q"', "http://c.com"]
    assert rewrite_html(html, _mark) == (
        '<a href=T(http://a.com/x?y=1)>a</a><a href=\'T(http://b.com/"q")\'>b</a><a href = "T(http://c.com)" >c</a>'
    )


def test_attributes_without_values_and_self_closing_slashes():
    html = '<a download href="http://x.com" hidden/>x</a><a/href="http://y.com">'
    assert _urls(html) == ["http://x.com", "http://y.com"]


def test_gt_inside_quoted_value_does_not_end_the_tag():
    assert _names('<a title="a > b" href="http://x.com">x</a>') == ["a > b"]


def test_links_inside_comments_and_mso_conditional_comments_are_left_alone():
    html = (
        '<!-- <a href="http://comment.com">c</a> -->'
        '<!--[if mso]><a href="http://mso.com">m</a><![endif]-->'
        '<a href="http://real.com">r</a>'
    )
    assert _urls(html) == ["http://real.com"]


def test_downlevel_revealed_conditional_content_is_tracked():
    html = '<!--[if !mso]><!--><a href="http://notmso.com">n</a><!--<![endif]-->'
    assert _urls(html) == ["http://notmso.com"]


def test_abrupt_empty_comments_end_immediately():
    assert _urls('<!--><a href="http://a.com">a</a><!---><a href="http://b.com">b</a>') == [
        "http://a.com",
        "http://b.com",
    ]


def test_unterminated_comment_hides_the_rest():
    assert _urls('<a href="http://a.com">a</a><!-- <a href="http://b.com">') == ["http://a.com"]


def test_doctype_cdata_and_processing_instructions_are_skipped():
    html = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1.dtd">'
        '<?xml version="1.0"?><![CDATA[ <a href="http://cdata.com"> ]]><a href="http://x.com">x</a>'
    )
    assert _urls(html) == ["http://x.com"]


@pytest.mark.parametrize("tag", ["script", "style", "SCRIPT", "textarea", "title"])
def test_raw_text_elements_hide_their_content(tag):
    html = f'<{tag}>"</a><a href="http://hidden.com">"</{tag}><a href="http://x.com">x</a>'
    assert _urls(html) == ["http://x.com"]


def test_script_ends_only_at_its_own_end_tag():
    html = '<script>document.write("</scripty><a href=\\"http://no.com\\">")</script ><a href="http://yes.com">'
    assert _urls(html) == ["http://yes.com"]


def test_lone_less_than_signs_are_text():
    assert _urls('1 < 2 <3 <= <a href="http://x.com">x</a> a<b') == ["http://x.com"]


def test_unterminated_tag_is_not_a_link():
    assert _urls('<a href="http://x.com"') == []
    assert _urls('<a href="http://x.com') == []


def test_end_tags_with_attributes_do_not_confuse_the_scanner():
    assert _urls('</a title=">"><a href="http://x.com">x</a></ x>') == ["http://x.com"]


# --- templates -----------------------------------------------------------------------


def test_template_substitutions_are_opaque_inside_attributes():
    html = '<a href="http://x.com/?u={{user}}&amp;o={{ offer }}" title={{ a "b" > c }}>x</a>'
    scan = scan_html(html)
    assert _urls(html) == ["http://x.com/?u={{user}}&amp;o={{ offer }}"]
    assert scan.links[0].name == '{{ a "b" > c }}'


def test_quotes_inside_substitutions_do_not_end_the_href():
    html = '<a href="http://x.com/{{ a or "b" }}/{{{ c }}}">x</a>'
    assert _urls(html) == ['http://x.com/{{ a or "b" }}/{{{ c }}}']


def test_less_than_inside_text_substitutions_starts_no_tag():
    html = '{{ if a <b }}<a href="http://x.com">x</a>{{ end }}'
    assert _urls(html) == ["http://x.com"]


def test_unclosed_braces_are_plain_text():
    assert _urls('{{ oops <a href="http://x.com/{{">x</a>') == ["http://x.com/{{"]


def test_wrap_receives_url_with_character_references_decoded_once():
    seen = []
    html = '<a href="http://x.com/?a=1&amp;b=2&amp;amp;c&#x3D;3&lt;&copy=4&copy;">x</a>'
    rewrite_html(html, lambda url, span: seen.append(url) or "t")
    assert seen == ["http://x.com/?a=1&b=2&amp;c=3<&copy=4©"]


# --- names, sublinks, unsubscribe -----------------------------------------------------


def test_link_name_precedence_linkname_title_alt_raw_url():
    assert _names('<a href="http://x.com" title="T" data-msys-linkname="L"><img alt="A"></a>') == ["L"]
    assert _names('<a href="http://x.com" title="T"><img alt="A"></a>') == ["T"]
    assert _names('<a href="http://x.com"><span><img src="s.gif" alt=""><img alt="A &amp; B"></span></a>') == ["A & B"]
    assert _names('<a href="http://x.com">text</a><img alt="outside">') == ["Raw URL"]
    assert _names('<a href="http://x.com" data-msys-linkname="" title="">x</a>') == ["Raw URL"]


def test_img_alt_after_the_anchor_closes_does_not_name_it():
    assert _names('<a href="http://a.com">a<a href="http://b.com"><img alt="B"></a>') == ["Raw URL", "B"]


def test_area_name_comes_from_its_own_attributes():
    assert _names('<area href="http://x.com" title="Map"><img alt="no">') == ["Map"]
    assert _names('<area href="http://x.com"><img alt="no">') == ["Raw URL"]


def test_link_name_is_cut_to_63_bytes_on_a_character_boundary():
    name = "é" * 40  # 80 bytes
    (got,) = _names(f'<a href="http://x.com" data-msys-linkname="{name}">x</a>')
    assert got == "é" * 31
    assert len(got.encode()) == 62
    (ascii_name,) = _names(f'<a href="http://x.com" data-msys-linkname="{"n" * 100}">x</a>')
    assert ascii_name == "n" * 63


def test_sublink_and_unsubscribe_attributes():
    html = '<a href="http://x.com" data-msys-sublink="deals/today" data-msys-unsubscribe="1">x</a><a href="http://y.com" data-msys-unsubscribe="0">'
    first, second = scan_html(html).links
    assert (first.sublink, first.unsubscribe) == ("deals/today", True)
    assert (second.sublink, second.unsubscribe) == (None, False)


# --- stripping and byte identity -------------------------------------------------------


def test_data_msys_attributes_are_stripped_from_every_tag_with_leading_whitespace():
    html = (
        '<div  data-msys-foo="1" class="c">'
        '<a\n\tdata-msys-linkname="n" href="http://x.com" DATA-MSYS-SUBLINK=p data-msys-unsubscribe>x</a></div>'
    )
    assert rewrite_html(html, _mark) == '<div class="c"><a href="T(http://x.com)">x</a></div>'


def test_stripping_never_glues_neighbouring_attributes():
    html = '<a data-msys-linkname="n"href="http://x.com"data-msys-sublink="s"title="t">x</a>'
    out = rewrite_html(html, lambda url, span: "http://t.co/f/1")
    assert out == '<a href="http://t.co/f/1"title="t">x</a>'
    assert scan_html(out).links[0].name == "t"


def test_everything_but_links_strips_and_pixels_is_byte_identical():
    html = (
        "<!DOCTYPE html>\r\n<HTML><Body bgcolor=#fff>\n  <p class='a'>Caf\u00e9 &amp; <b>bar</b></p>\n"
        '  <a   href="http://x.com/?a=1&amp;b=2"   target=_blank>go</a>\n</Body></HTML>\n'
    )
    out = rewrite_html(html, lambda url, span: "TRACKED", open_pixel="<P>", initial_open_pixel="<I>")
    assert out == (
        "<!DOCTYPE html>\r\n<HTML><Body bgcolor=#fff><I>\n  <p class='a'>Caf\u00e9 &amp; <b>bar</b></p>\n"
        '  <a   href="TRACKED"   target=_blank>go</a>\n<P></Body></HTML>\n'
    )


def test_html_without_links_is_unchanged():
    html = "<p>Hello &amp; welcome</p>"
    assert rewrite_html(html, _mark) == html


# --- pixels --------------------------------------------------------------------------


def test_pixel_html_shape():
    assert pixel_html("http://t.example/q/abc_-") == (
        '<img src="http://t.example/q/abc_-" width="1" height="1" border="0" alt="">'
    )


def test_pixels_go_after_body_open_and_before_last_body_close():
    html = '<html><body style="margin:0"><p>x</p></body><!-- </body> --></body></html>'
    scan = scan_html(html)
    assert html[: scan.initial_open_at].endswith('<body style="margin:0">')
    assert scan.open_at == html.rindex("</body>")
    out = rewrite_html(html, _mark, open_pixel="[O]", initial_open_pixel="[I]")
    assert out == '<html><body style="margin:0">[I]<p>x</p></body><!-- </body> -->[O]</body></html>'


def test_without_body_open_pixel_is_appended_and_initial_pixel_is_left_out():
    html = "<p>fragment</p>"
    scan = scan_html(html)
    assert (scan.initial_open_at, scan.open_at) == (None, len(html))
    assert rewrite_html(html, _mark, open_pixel="[O]", initial_open_pixel="[I]") == "<p>fragment</p>[O]"


def test_empty_body_gets_initial_then_open_pixel():
    assert rewrite_html("<BODY></BODY>", _mark, open_pixel="[O]", initial_open_pixel="[I]") == "<BODY>[I][O]</BODY>"


def test_only_the_first_body_tag_counts_for_the_initial_pixel():
    html = "<body a=1><body b=2>x"
    assert rewrite_html(html, _mark, initial_open_pixel="[I]") == "<body a=1>[I]<body b=2>x"


def test_body_inside_comments_does_not_count():
    assert scan_html("<!-- <body> --><p>x</p>").initial_open_at is None


def test_no_pixels_when_not_asked():
    html = "<body>x</body>"
    assert rewrite_html(html, _mark) == html


def test_scan_of_html_is_a_plain_value():
    assert scan_html("") == Scan(links=(), strip=(), initial_open_at=None, open_at=0)


# --- text parts ------------------------------------------------------------------------


def _text_urls(text: str) -> list[str]:
    return [text[link.start : link.end] for link in scan_text(text).links]


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("Go to http://x.com.", "http://x.com"),
        ("http://x.com/a, then", "http://x.com/a"),
        ("Really? https://x.com/q?a=1!", "https://x.com/q?a=1"),
        ("end: http://x.com/path/;", "http://x.com/path/"),
        ("(see http://x.com/a)", "http://x.com/a"),
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", "https://en.wikipedia.org/wiki/Foo_(bar)"),
        ("[http://x.com/a]", "http://x.com/a"),
        ("http://x.com/a[1]", "http://x.com/a[1]"),
        ("<http://x.com/a>", "http://x.com/a"),
        ('"http://x.com/a"', "http://x.com/a"),
        ("HTTPS://X.COM/A", "HTTPS://X.COM/A"),
        ("http://x.com/?u={{ user }}&o={{offer}} next", "http://x.com/?u={{ user }}&o={{offer}}"),
        ("http://x.com/a...", "http://x.com/a"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ],
)
def test_text_urls_end_where_the_sentence_resumes(text, url):
    assert _text_urls(text) == [url]


def test_text_without_anything_after_the_scheme_has_no_link():
    assert _text_urls("http:// and https://. ftp://x.com mailto:a@b.c") == []


def test_text_marker_sets_attributes_and_is_always_stripped():
    text = (
        'a http://x.com[[data-msys-linkname="Home" data-msys-sublink="s"]] b '
        "http://y.com[[data-msys-unsubscribe='1']] c "
        'http://z.com[[data-msys-clicktrack="0"]] d'
    )
    scan = scan_text(text)
    assert [(link.name, link.sublink, link.unsubscribe) for link in scan.links] == [
        ("Home", "s", False),
        ("Raw URL", None, True),
    ]
    assert rewrite_text(text, _mark) == "a T(http://x.com) b T(http://y.com) c http://z.com d"


def test_text_marker_keeps_punctuation_before_it_and_after_it():
    assert rewrite_text('See http://x.com/a.[[data-msys-linkname="n"]].', _mark) == "See T(http://x.com/a.)."


def test_text_brackets_that_are_not_a_marker_belong_to_the_url():
    assert _text_urls("http://x.com/?a[[0]]=1 next") == ["http://x.com/?a[[0]]=1"]


def test_text_scan_has_no_pixel_offsets():
    scan = scan_text("http://x.com")
    assert (scan.initial_open_at, scan.open_at) == (None, None)


def test_text_template_code_outside_urls_is_not_a_link():
    assert _text_urls('{{ if url == "http://x.com" }}yes{{ end }} http://y.com') == ["http://y.com"]


def test_text_rewrite_keeps_everything_else_identical():
    text = "Hello,\r\n\tvisit http://x.com/a?b=c&d=e#f (or http://y.com).\n"
    assert rewrite_text(text, _mark) == "Hello,\r\n\tvisit T(http://x.com/a?b=c&d=e#f) (or T(http://y.com)).\n"


def test_text_urls_next_to_each_other_on_lines():
    assert _text_urls("http://a.com\nhttp://b.com\thttp://c.com") == ["http://a.com", "http://b.com", "http://c.com"]
