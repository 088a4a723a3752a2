"""mailcore/rfc822.py: splitting, decoding, substitution and tracking of email_rfc822
sources, and their reassembly. Pure: no database."""

from __future__ import annotations

import base64
import email
import quopri
import re
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore import rfc822
from mailcore.headers import sanitize
from mailcore.language import TemplateRenderError, TemplateSyntaxError
from mailcore.links import scan_html
from mailcore.rfc822 import (
    NEW_BASE64,
    NEW_CHARSET,
    NEW_CTE,
    LiteralPart,
    Rfc822Error,
    compile_message,
    decode_body,
    decode_words,
    encode_body,
    encode_header,
    normalize_newlines,
    split_message,
    text_parts,
)

PDF = bytes(range(256)) * 3  # every byte value: any re-encoding would show
PDF_B64 = base64.encodebytes(PDF).decode("ascii")
PNG_B64 = base64.encodebytes(b"\x89PNG\r\n\x1a\n" + bytes(100)).decode("ascii")
HTML = (
    '<html><body><p>Hi {{name}}</p><a href="https://example.com/offer?u={{name}}&amp;x=1" '
    'data-msys-linkname="offer">go</a> <a href="mailto:a@b.test">mail</a></body></html>'
)


class Tracker:
    """Records what it wraps; links become /f/<n>, pixels a marked img."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.names: list[str] = []

    def link(self, url: str, span) -> str:
        self.urls.append(url)
        self.names.append(span.name)
        return f"https://t.test/f/{len(self.urls) - 1}"

    def pixel(self, kind: str) -> str:
        return f'<img src="https://t.test/q/{kind}">'


def lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def message(data: bytes):
    return email.message_from_bytes(data, policy=policy.default)


def leaves(msg) -> dict[str, object]:
    return {part.get_content_type(): part for part in msg.walk() if not part.is_multipart()}


def alternative(text_headers: str = "", text_body: str = "Hi {{name}}, see https://example.com/t\n") -> str:
    return (
        "From: News <news@sender.test>\n"
        "Subject: Hello {{name}}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="ALT"\n'
        "\n"
        "--ALT\n"
        f"Content-Type: text/plain; charset=us-ascii\n{text_headers}"
        "\n"
        f"{text_body}"
        "--ALT\n"
        "Content-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        f"{base64.encodebytes(HTML.encode()).decode()}"
        "--ALT--\n"
    )


def mixed() -> str:
    return (
        "From: news@sender.test\n"
        "To: list@example.com\n"
        "Subject: Report for {{name}}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=MIX\n"
        "\n"
        "This is a multi-part message in MIME format.\n"
        "--MIX\n"
        "Content-Type: multipart/related; boundary=REL\n"
        "\n"
        "--REL\n"
        "Content-Type: text/html; charset=utf-8\n"
        "\n"
        '<html><body><img src="cid:logo"> {{name}} <a href="http://example.com/r">r</a></body></html>\n'
        "--REL\n"
        "Content-Type: image/png\n"
        "Content-ID: <logo>\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        f"{PNG_B64}"
        "--REL--\n"
        "--MIX\n"
        "Content-Type: text/plain; charset=utf-8\n"
        'Content-Disposition: attachment; filename="notes.txt"\n'
        "\n"
        "raw {{name}} http://example.com/attached\n"
        "--MIX\n"
        'Content-Type: application/pdf; name="r.pdf"\n'
        'Content-Disposition: attachment; filename="r.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n"
        f"{PDF_B64}"
        "--MIX--\n"
        "epilogue {{name}}\n"
    )


# --- splitting -------------------------------------------------------------------------------


def test_crlf_and_lone_cr_become_lf():
    assert normalize_newlines("a\r\nb\rc\nd") == b"a\nb\nc\nd"


def test_the_tree_of_a_mixed_message_has_offsets_of_each_part():
    data = normalize_newlines(mixed())
    root = split_message(data)
    assert root.content_type == "multipart/mixed"
    related, notes, pdf = root.children
    assert [child.content_type for child in related.children] == ["text/html", "image/png"]
    assert notes.disposition == "attachment"
    assert data[pdf.body_start : pdf.end].decode() == PDF_B64.rstrip("\n")
    assert base64.b64decode(data[pdf.body_start : pdf.end]) == PDF


def test_text_parts_are_the_first_non_attachment_text_leaves():
    root = split_message(normalize_newlines(mixed()))
    found = text_parts(root)
    assert set(found) == {"html"}  # the text/plain is an attachment
    assert found["html"].content_type == "text/html"


def test_a_folded_header_is_one_field_with_its_value_unfolded():
    root = split_message(b"Subject: one\n two\n\tthree\nFrom: a@b.test\n\nbody\n")
    subject, sender = root.fields
    assert (subject.name, subject.value) == ("Subject", "one two\tthree")
    assert sender.start == subject.end


def test_a_line_that_is_not_a_header_starts_the_body():
    root = split_message(b"Subject: s\nnot a header line\nmore\n")
    assert [f.name for f in root.fields] == ["Subject"]
    assert root.body_start == root.head_end == len(b"Subject: s\n")


@pytest.mark.parametrize(
    "source",
    [
        "",
        "just some text\n\nand more",
        "Subject: x\nContent-Type: multipart/mixed\n\n--B\n\nx\n--B--\n",  # no boundary
        "Subject: x\nContent-Type: multipart/mixed; boundary=B\n\nno delimiter here\n",
    ],
)
def test_sources_that_are_not_a_mime_tree_are_refused(source):
    with pytest.raises(Rfc822Error):
        compile_message(source)


def test_multiparts_nested_too_deep_are_refused():
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(40))
    with pytest.raises(Rfc822Error, match="nested"):
        compile_message("Subject: deep\n" + head + "\nx\n")


# --- decoding and encoding bodies --------------------------------------------------------------


def test_quoted_printable_latin1_decodes_with_its_codec():
    assert decode_body(b"Caf=E9 =3D {{x}}=\n!", cte="quoted-printable", charset="iso-8859-1") == (
        "Café = {{x}}!",
        "iso-8859-1",
    )


def test_a_body_that_is_not_ascii_without_a_charset_decodes_as_utf8():
    assert decode_body("é".encode(), cte="8bit", charset=None) == ("é", "us-ascii")


@pytest.mark.parametrize(
    ("raw", "cte", "charset"),
    [
        (b"x", "7bit", "x-no-such-charset"),
        (b"x", "x-uuencode", "utf-8"),
        (b"\xff\xfe", "8bit", "utf-8"),
        (b"x", "7bit", "rot13"),  # a bytes-to-bytes codec is not a charset
    ],
)
def test_bodies_that_cannot_be_decoded_reliably_are_none(raw, cte, charset):
    assert decode_body(raw, cte=cte, charset=charset) is None


def test_encode_body_keeps_the_charset_and_encoding_when_they_can_carry_the_text():
    assert encode_body("Café", codec="iso-8859-1", cte="quoted-printable") == (b"Caf=E9", 0)
    assert encode_body("plain\n", codec="us-ascii", cte="7bit") == (b"plain\n", 0)
    body, state = encode_body("x" * 100, codec="utf-8", cte="base64", suffix=b"\n")
    assert state == 0 and body.endswith(b"\n") and not body.endswith(b"\n\n")
    assert base64.b64decode(body) == b"x" * 100


def test_encode_body_falls_back_to_utf8_and_quoted_printable():
    body, state = encode_body("Ωmega", codec="iso-8859-1", cte="quoted-printable")
    assert state == NEW_CHARSET and quopri.decodestring(body).decode("utf-8") == "Ωmega"
    body, state = encode_body("Zoë", codec="us-ascii", cte="7bit")
    assert state == NEW_CHARSET | NEW_CTE and quopri.decodestring(body).decode("utf-8") == "Zoë"
    body, state = encode_body("y" * 1200, codec="us-ascii", cte="8bit")
    assert state == NEW_CTE and max(map(len, body.split(b"\n"))) <= 76


# --- headers -----------------------------------------------------------------------------------


def test_decode_words_keeps_the_text_around_encoded_words():
    assert decode_words('"=?utf-8?q?J=C3=B6rg?=" <j@x.test>, hi') == '"Jörg" <j@x.test>, hi'
    assert decode_words("=?utf-8?b?SMOp?= =?utf-8?b?bGxv?= {{name}}") == "Héllo {{name}}"
    assert decode_words("=?iso-8859-1?q?caf=E9_{{x}}?=") == "café {{x}}"
    assert decode_words("=?x-nope?q?abc?= stays") == "=?x-nope?q?abc?= stays"


def test_encode_header_ascii_goes_as_is_and_the_rest_is_rfc2047():
    assert encode_header("Subject", "Hello Jo") == b"Subject: Hello Jo\n"
    subject = encode_header("Subject", "Héllo Zoë")
    assert message(subject + b"\n")["Subject"] == "Héllo Zoë"
    sender = encode_header("From", '"Doe, Zoë" <z@x.test>, Plain <p@x.test>')
    assert b"<z@x.test>" in sender and b"<p@x.test>" in sender  # addresses stay readable
    assert [(a.display_name, a.addr_spec) for a in message(sender + b"\n")["From"].addresses] == [
        ("Doe, Zoë", "z@x.test"),
        ("Plain", "p@x.test"),
    ]


def test_a_line_break_in_a_substituted_value_never_adds_a_header():
    compiled = compile_message("From: a@b.test\nSubject: Hi {{name}}\n\nbody\n")
    data = compiled.render({"name": "x\r\nBcc: victim@example.com\nX-Evil: 1"}).data
    parsed = message(data)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"] == "Hi x Bcc: victim@example.com X-Evil: 1"


def test_headers_with_encoded_words_are_decoded_substituted_and_encoded_again():
    source = (
        "From: =?utf-8?q?J=C3=B6rg_{{team}}?= <news@sender.test>\n"
        "Subject: =?utf-8?b?SMOpbGxv?=\n =?utf-8?q?_{{name}}?=\n"
        "X-Plain: {{name}}\n"
        "\nbody\n"
    )
    rendered = compile_message(source).render({"name": "Zoë", "team": "News"})
    parsed = message(rendered.data)
    assert parsed["Subject"] == "Héllo Zoë"
    assert parsed["From"].addresses[0].display_name == "Jörg News"
    assert parsed["From"].addresses[0].addr_spec == "news@sender.test"
    assert parsed["X-Plain"] == "Zoë"
    assert rendered.data.isascii()
    assert (rendered.subject, rendered.from_header) == ("Héllo Zoë", "Jörg News <news@sender.test>")


def test_headers_without_substitution_and_structural_headers_are_left_as_written():
    source = "From: a@b.test\nX-Odd:   spaced  \nContent-Type: text/plain; x={{y}}\n\nbody\n"
    compiled = compile_message(source)
    assert compiled.headers == ()
    assert compiled.render({}).data == source.encode()


# --- whole messages ----------------------------------------------------------------------------


def test_multipart_alternative_substitutes_and_tracks_both_parts():
    tracker = Tracker()
    rendered = compile_message(alternative()).render({"name": "Jo"}, tracker)
    parsed = message(rendered.data)
    assert parsed["Subject"] == "Hello Jo" and rendered.subject == "Hello Jo"
    parts = leaves(parsed)
    text = parts["text/plain"].get_content()
    html = parts["text/html"].get_content()
    assert text == "Hi Jo, see https://t.test/f/0"  # the last line end belongs to the delimiter
    assert html == (
        '<html><body><img src="https://t.test/q/initial_open"><p>Hi Jo</p><a href="https://t.test/f/1">go</a>'
        ' <a href="mailto:a@b.test">mail</a><img src="https://t.test/q/open"></body></html>'
    )
    assert tracker.urls == ["https://example.com/t", "https://example.com/offer?u=Jo&x=1"]
    assert tracker.names == ["Raw URL", "offer"]
    assert parts["text/html"]["Content-Transfer-Encoding"] == "base64"


def test_multipart_mixed_attachments_and_images_are_byte_for_byte_untouched():
    source = mixed()
    rendered = compile_message(source).render({"name": "Zoë"}, Tracker())
    assert PDF_B64.encode() in rendered.data and PNG_B64.encode() in rendered.data
    assert b'Content-Type: application/pdf; name="r.pdf"\n' in rendered.data
    assert b"raw {{name}} http://example.com/attached\n" in rendered.data  # the text attachment
    assert rendered.data.endswith(b"--MIX--\nepilogue {{name}}\n")
    parts = leaves(message(rendered.data))
    assert parts["application/pdf"].get_content() == PDF
    html = parts["text/html"].get_content()
    assert "Zoë" in html and 'href="https://t.test/f/0"' in html and "https://t.test/q/open" in html
    # Everything outside the html part and the subject is the source's bytes.
    original = normalize_newlines(source)
    assert (
        rendered.data.split(b"--REL\nContent-Type: image/png")[1]
        == original.split(b"--REL\nContent-Type: image/png")[1]
    )


def test_a_non_utf8_quoted_printable_part_keeps_its_charset_when_it_can():
    source = (
        "From: a@b.test\nSubject: s\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Caf=E9 {{name}} =3D ok\n"
    )
    compiled = compile_message(source)
    latin = compiled.render({"name": "Zoé"}).data
    assert b"Content-Type: text/plain; charset=ISO-8859-1\n" in latin
    assert latin.endswith(b"\n\nCaf=E9 Zo=E9 =3D ok\n")
    wide = message(compiled.render({"name": "Ωmega"}).data)
    assert wide.get_content_charset() == "utf-8"
    assert wide["Content-Transfer-Encoding"] == "quoted-printable"
    assert wide.get_content() == "Café Ωmega = ok\n"


def test_a_seven_bit_part_given_non_ascii_becomes_utf8_quoted_printable():
    source = "From: a@b.test\nSubject: s\n\nHi {{name}}\n"  # no MIME headers at all: text/plain us-ascii
    compiled = compile_message(source)
    assert compiled.render({"name": "Jo"}).data == b"From: a@b.test\nSubject: s\n\nHi Jo\n"
    data = compiled.render({"name": "Zoë"}).data
    parsed = message(data)
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_content() == "Hi Zoë\n"


def test_a_single_part_html_message_is_substituted_and_tracked():
    source = (
        "From: a@b.test\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<html><body>{{name}} <a href="https://example.com/a">a</a></body></html>\r\n'
    )
    tracker = Tracker()
    rendered = compile_message(source).render({"name": "Jo"}, tracker, extra_headers=b"X-Extra: 1\n")
    assert rendered.data == (
        b"From: a@b.test\nSubject: s\nContent-Type: text/html; charset=utf-8\nX-Extra: 1\n\n"
        b'<html><body><img src="https://t.test/q/initial_open">Jo <a href="https://t.test/f/0">a</a>'
        b'<img src="https://t.test/q/open"></body></html>\n'
    )
    assert tracker.urls == ["https://example.com/a"]


def test_crlf_and_lf_sources_give_the_same_message():
    lf = alternative()
    crlf = lf.replace("\n", "\r\n")
    assert (
        compile_message(crlf).render({"name": "Jo"}, Tracker()).data
        == compile_message(lf).render({"name": "Jo"}, Tracker()).data
    )


def test_a_message_with_no_html_part_gets_no_pixel_but_tracked_text_links():
    source = 'From: a@b.test\nSubject: s\n\nHi {{name}} https://example.com/x[[data-msys-linkname="x"]].\n'
    tracker = Tracker()
    data = compile_message(source).render({"name": "Jo"}, tracker).data
    assert data.endswith(b"\n\nHi Jo https://t.test/f/0.\n")
    assert b"/q/" not in data and tracker.names == ["x"]


def test_only_the_first_html_part_is_tracked_and_attached_messages_are_not_entered():
    source = (
        "From: a@b.test\nSubject: s\nContent-Type: multipart/mixed; boundary=M\n\n"
        "--M\nContent-Type: text/html\n\n<body>{{a}}</body>\n"
        "--M\nContent-Type: text/html\n\n<body>{{a}} second</body>\n"
        "--M\nContent-Type: message/rfc822\n\nSubject: inner {{a}}\nContent-Type: text/html\n\n<body>{{a}}</body>\n"
        "--M--\n"
    )
    compiled = compile_message(source)
    assert compiled.parts == ("html",)
    data = compiled.render({"a": "A"}, Tracker()).data
    assert data.count(b"/q/open") == 1
    assert b"<body>{{a}} second</body>" in data and b"Subject: inner {{a}}" in data


def test_a_part_in_an_unknown_charset_is_left_alone():
    source = "From: a@b.test\nSubject: {{a}}\nContent-Type: text/html; charset=x-martian\n\n<body>{{a}}</body>\n"
    compiled = compile_message(source)
    assert compiled.parts == ()
    assert compiled.render({"a": "A"}, Tracker()).data.endswith(b"\n\n<body>{{a}}</body>\n")


def test_an_unchanged_part_keeps_its_exact_bytes():
    body = "long line that was soft broken =\nby the client=20\nhttp://example.com/x\n"
    source = "From: a@b.test\nSubject: s\nContent-Transfer-Encoding: quoted-printable\n\n" + body
    assert compile_message(source).render({}).data.endswith(body.encode())


@pytest.mark.parametrize("cte", ["7bit", "quoted-printable", "8bit"])
def test_a_substituted_boundary_cannot_end_the_part(cte):
    source = (
        "From: a@b.test\nSubject: s\nContent-Type: multipart/alternative; boundary=ZZ\n\n"
        f"--ZZ\nContent-Type: text/plain\nContent-Transfer-Encoding: {cte}\n\n{{{{{{v}}}}}}\n"
        "--ZZ\nContent-Type: text/html\n\n<p>x</p>\n--ZZ--\n"
    )
    value = "a\n--ZZ\nContent-Type: text/html\n\n<p>injected</p>\n--ZZ--\n"
    parsed = message(compile_message(source).render({"v": value}).data)
    parts = [part for part in parsed.walk() if not part.is_multipart()]
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert parts[0]["Content-Transfer-Encoding"] == "base64"
    assert parts[0].get_content() == value


def test_encode_body_goes_base64_when_a_boundary_would_appear():
    body, state = encode_body("x\n--B--\n", codec="us-ascii", cte="7bit", boundaries=(b"--B",))
    assert state == NEW_BASE64 and base64.b64decode(body) == b"x\n--B--\n"


def test_a_long_line_after_tracking_switches_a_7bit_part_to_quoted_printable():
    source = "From: a@b.test\nSubject: s\nContent-Type: text/html\n\n<body>" + "x" * 990 + "</body>\n"
    data = compile_message(source).render({}, Tracker()).data
    parsed = message(data)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(map(len, data.split(b"\n"))) <= 998
    assert parsed.get_content().endswith('<img src="https://t.test/q/open"></body>\n')


def test_without_substitution_bodies_go_as_written_but_tracked_and_headers_are_substituted():
    tracker = Tracker()
    rendered = compile_message(alternative(), substitute=False).render({"name": "Jo"}, tracker)
    parts = leaves(message(rendered.data))
    assert rendered.subject == "Hello Jo"
    assert parts["text/plain"].get_content() == "Hi {{name}}, see https://t.test/f/0"
    assert '<p>Hi {{name}}</p><a href="https://t.test/f/1">go</a>' in parts["text/html"].get_content()
    assert tracker.urls[1] == "https://example.com/offer?u={{name}}&x=1"


def test_a_literal_part_keeps_untracked_links_as_written_and_loses_its_markers():
    source = '<a href="http://x.test/?a=1&amp;lt=2" data-msys-linkname="n">x</a>'
    part = LiteralPart(source, part="html", html=True, scan=scan_html(source))
    assert part.render({}) == '<a href="http://x.test/?a=1&amp;lt=2">x</a>'

    class Untracked(Tracker):
        def link(self, url, span):
            return url

        def pixel(self, kind):
            return ""

    assert part.render({}, Untracked()) == '<a href="http://x.test/?a=1&amp;lt=2">x</a>'
    tracker = Tracker()
    assert part.render({}, tracker) == '<a href="https://t.test/f/0">x</a><img src="https://t.test/q/open">'
    assert (tracker.urls, tracker.names) == (["http://x.test/?a=1&lt=2"], ["n"])


def test_existing_list_unsubscribe_is_reported():
    assert compile_message("From: a@b.test\nList-Unsubscribe: <mailto:u@b.test>\n\nx\n").has_list_unsubscribe
    assert not compile_message("From: a@b.test\n\nx\n").has_list_unsubscribe


def test_a_source_without_a_final_line_end_still_takes_extra_headers_on_their_own_line():
    data = compile_message("From: a@b.test\nSubject: {{a}}").render({"a": "A"}, extra_headers=b"X-E: 1\n").data
    assert data == b"From: a@b.test\nSubject: A\nX-E: 1\n"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "part", "line"),
    [
        ("From: a@b.test\nSubject: {{ if }}\n\nx\n", "Header:Subject", 1),
        ("From: a@b.test\nSubject: s\nContent-Type: text/html\n\n<p>\n{{ each }}\n", "html", 2),
        (alternative(text_body="ok\n{{ end }}\n"), "text", 2),
    ],
)
def test_syntax_errors_name_the_part_and_the_line(source, part, line):
    with pytest.raises(TemplateSyntaxError) as info:
        compile_message(source)
    assert (info.value.part, info.value.line) == (part, line)


def test_syntax_errors_in_bodies_do_not_count_without_substitution():
    rendered = compile_message("From: a@b.test\nSubject: s\n\n{{ each }}\n", substitute=False).render({})
    assert message(rendered.data).get_content() == "{{ each }}\n"


def test_a_render_error_names_the_part():
    compiled = compile_message("From: a@b.test\nSubject: s\n\n{{ a + 1 }}\n")
    with pytest.raises(TemplateRenderError) as info:
        compiled.render({"a": "x"})
    assert info.value.part == "text"


# --- properties --------------------------------------------------------------------------------

words = st.sampled_from(["a", " ", "é", "€", "=", "http://x.test/p", "\n", "<b>", "--", ".", "\t"])


@settings(max_examples=200, deadline=None)
@given(text=st.lists(words).map("".join), html=st.lists(words).map("".join), crlf=st.booleans())
def test_a_source_without_substitutions_renders_to_itself_without_a_tracker(text, html, crlf):
    source = (
        "From: a@b.test\nSubject: s\nContent-Type: multipart/alternative; boundary=ZZ\n\n"
        "--ZZ\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        f"{quopri.encodestring(text.encode()).decode()}\n"
        "--ZZ\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{html}\n--ZZ--\n"
    )
    if crlf:
        source = source.replace("\n", "\r\n")
    assert compile_message(source).render({}).data == normalize_newlines(source)


@settings(max_examples=200, deadline=None)
@given(value=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_any_substituted_value_comes_back_out_of_headers_and_bodies(value):
    source = (
        "From: a@b.test\nSubject: [{{v}}]\nContent-Type: multipart/alternative; boundary=ZZ\n\n"
        "--ZZ\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
        "<{{{v}}}>\n--ZZ\nContent-Type: text/html\n\n<p>{{{v}}}</p>\n--ZZ--\n"
    )
    data = compile_message(source).render({"v": value}).data
    parsed = message(data)
    parts = leaves(parsed)
    plain = parts["text/plain"].get_content()
    html = parts["text/html"].get_content()
    assert lf(plain) == lf(f"<{value}>")  # the source's last line end belongs to the delimiter
    assert lf(html) == lf(f"<p>{value}</p>")
    # Control characters become spaces in a header (mailcore.headers.sanitize).
    assert re.sub(r"\s+", " ", str(parsed["Subject"])).strip() == re.sub(r"\s+", " ", sanitize(f"[{value}]")).strip()


def test_substitute_headers_false_sends_a_header_with_braces_as_written():
    source = "From: a@example.com\nSubject: Hi {{x}} {{ name }}\nContent-Type: text/plain\n\nBody {{x}}\n"
    rendered = compile_message(source, substitute=False, substitute_headers=False).render({"x": "X", "name": "Jo"})
    assert rendered.subject == "Hi {{x}} {{ name }}"
    assert rendered.data == source.encode()


def test_perform_substitutions_false_alone_still_substitutes_headers():
    source = "From: a@example.com\nSubject: Hi {{x}}\nContent-Type: text/plain\n\nBody {{x}}\n"
    rendered = compile_message(source, substitute=False).render({"x": "X"})
    assert rendered.subject == "Hi X" and rendered.data.endswith(b"Body {{x}}\n")


def test_a_body_seen_before_is_not_scanned_again_and_a_changed_one_is(monkeypatch):
    """Messages that differ only in their header block (SMTP injections: a Received line, a
    Date) share the scan of their identical HTML, looked up by its exact text."""
    from mailcore import rfc822

    rfc822._scan_cached.cache_clear()
    rfc822._literal_cached.cache_clear()
    scanned: list[str] = []
    real = rfc822.scan_html

    def scan(text: str):
        scanned.append(text)
        return real(text)

    monkeypatch.setattr(rfc822, "scan_html", scan)
    body = '<html><body><a href="https://example.com/a">a</a></body></html>\n'
    source = "Subject: {n}\nContent-Type: text/html\n\n{body}"
    first = compile_message(source.format(n=1, body=body), substitute=False, substitute_headers=False)
    again = compile_message(source.format(n=2, body=body), substitute=False, substitute_headers=False)
    other = compile_message(
        source.format(n=3, body=body.replace("/a", "/b")), substitute=False, substitute_headers=False
    )
    assert scanned == [body, body.replace("/a", "/b")]
    assert first.render({}, None).data.replace(b"1", b"2") == again.render({}, None).data
    assert b"example.com/b" in other.render({}, None).data


def _multipart(children: str, boundary: str = "a") -> str:
    return f"Content-Type: multipart/mixed; boundary={boundary}\n\n{children}--{boundary}--\n"


def test_a_message_has_at_most_max_parts_parts_at_every_level_together():
    """An attacker's finding: 20 MiB of ``--a`` lines made 4.1 million parts, 2 GB and 48 s
    in a worker. Up to MAX_PARTS parts are read, every level counted; one more is refused
    before the rest is looked at."""
    head = "From: a@example.com\nSubject: s\n"
    flat = head + _multipart("--a\n\nx\n" * rfc822.MAX_PARTS)
    assert len(rfc822.split_message(flat.encode()).children) == rfc822.MAX_PARTS
    with pytest.raises(rfc822.Rfc822Error, match=f"more than {rfc822.MAX_PARTS} parts"):
        rfc822.split_message((head + _multipart("--a\n\nx\n" * (rfc822.MAX_PARTS + 1))).encode())
    inner = _multipart("--b\n\nx\n" * 600, boundary="b")
    nested = head + _multipart(f"--a\n{inner}--a\n{inner}")  # 2 + 1,200 parts
    with pytest.raises(rfc822.Rfc822Error, match="parts"):
        rfc822.split_message(nested.encode())
