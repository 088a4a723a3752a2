"""The one header writer (mailcore/headers.py) and the address templates (mailcore/address_templates.py):
what they write, parsed with ``email.policy.default`` as a mail reader parses it. No database."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest

from mailcore.headers import HeaderError, envelope_address, header_block, header_line


def parse(data: bytes):
    return message_from_bytes(data + b"\n", policy=default)


def longest(data: bytes) -> int:
    return max(len(line) for line in data.split(b"\n"))


@pytest.mark.parametrize(
    "value, shown",
    [
        ("x\nReply-To : attacker@evil.example\nX-Injected : yes", "x Reply-To : attacker@evil.example X-Injected : yes"),
        ("Bob\n\nTEXT", "Bob  TEXT"),
        ("Bob\rTEXT", "Bob TEXT"),
        ("a\r\nb", "a b"),
        ("nul\x00del\x7fc1\x85ls\u2028ps\u2029", "nul del c1 ls ps"),
        ("lone \ud83d surrogate", "lone \ufffd surrogate"),
    ],
)  # fmt: skip
def test_control_characters_become_one_space_and_never_a_line(value, shown):
    data = header_line("Subject", value) + header_line("X-After", "1")
    message = parse(data)
    assert list(message.keys()) == ["Subject", "X-After"]
    assert message["Subject"] == shown
    assert not message["Subject"].defects


@pytest.mark.parametrize("value", ["x" * 5000, "é" * 3000, "a " * 3000, "=?utf-8?b?Zm9v?=", "  padded  ", ""])
def test_any_value_fits_in_998_octet_lines_and_reads_back(value):
    data = header_line("Subject", value)
    assert longest(data) <= 998
    assert parse(data)["Subject"] == value.strip(" ")
    if " " in value.strip() and value.isascii() and "=?" not in value:
        assert longest(data) <= 78 and b"=?" not in data  # folded at whitespace, not encoded


def test_an_address_header_encodes_only_the_display_name():
    data = header_line("Reply-To", "Réply Désk <r@example.com>")
    assert data.startswith(b"Reply-To: =?utf-8?b?") and data.endswith(b" <r@example.com>\n")
    reply_to = parse(data)["Reply-To"]
    assert [(a.display_name, a.addr_spec) for a in reply_to.addresses] == [("Réply Désk", "r@example.com")]


def test_idn_domains_go_as_a_labels_in_headers_and_in_the_envelope():
    assert header_line("To", [("", "a@bücher.de")]) == b"To: a@xn--bcher-kva.de\n"
    assert envelope_address("zoë@bücher.de") == "zoë@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "name, shown",
    [('Doe, "Jo" \\ Jr.', 'Doe, "Jo" \\ Jr.'), ("=?utf-8?b?Zm9v?=", "=?utf-8?b?Zm9v?="), ("Ann\n\tLee ", "Ann Lee")],
)
def test_display_names_read_back_as_written(name, shown):
    to = parse(header_line("To", [(name, "a@example.com")]))["To"]
    assert [(a.display_name, a.addr_spec) for a in to.addresses] == [(shown, "a@example.com")]


def test_an_address_list_folds_between_addresses():
    pairs = [(f"Person Number {i}", f"person{i}@example.com") for i in range(40)]
    data = header_line("Cc", pairs)
    assert longest(data) <= 78
    assert [(a.display_name, a.addr_spec) for a in parse(data)["Cc"].addresses] == pairs


def test_an_address_header_with_no_address_is_left_out():
    assert header_line("Cc", "  ") == b""
    assert header_line("Cc", []) == b""


@pytest.mark.parametrize("value", ["someone", "a@b.com\nBcc: x@y.z <", "Name <bad address@x.test>", "x@-"])
def test_an_address_header_that_holds_no_address_is_an_error(value):
    with pytest.raises(HeaderError):
        header_line("Cc", value)


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "", "É", "X" * 1000])
def test_a_field_name_that_is_not_printable_ascii_is_an_error(name):
    with pytest.raises(HeaderError):
        header_line(name, "v")


def test_short_ascii_values_take_the_fast_path_unchanged():
    assert header_block([("From", [("News", "news@sender.test")]), ("Subject", "Hello Jo")]) == (
        b"From: News <news@sender.test>\nSubject: Hello Jo\n"
    )


# --- address templates: the structure is the template's -------------------------------------------


@pytest.mark.parametrize(
    "template, data, mailboxes",
    [
        ("{{v}} <r@example.com>", {"v": "a@evil.example, T"}, [("a@evil.example, T", "r@example.com")]),
        ('"{{v}} \\"x\\"" <r@example.com>', {"v": "<e@evil.example>"}, [('<e@evil.example> "x"', "r@example.com")]),
        ("G: {{a}}, b@example.com;", {"a": "a@example.com"}, [("", "a@example.com"), ("", "b@example.com")]),
        ("a@example.com (Ann), {{b}}", {"b": "Bob <b@example.com>"}, [("", "a@example.com"), ("Bob", "b@example.com")]),
        ("{{if b}}{{b}}{{end}}", {}, []),
        ("=?utf-8?q?J=C3=B6rg?= {{t}} <a@example.com>", {"t": "T"}, [("Jörg T", "a@example.com")]),
    ],
)
def test_an_address_template_renders_the_templates_mailboxes(template, data, mailboxes):
    from mailcore.address_templates import compile_addresses

    assert compile_addresses("Cc", template).render(data) == mailboxes


@pytest.mark.parametrize("value", ["a@example.com, b@example.com", "<a@example.com>", "a@[10.0.0.5]", "no"])
def test_a_substituted_address_that_is_not_exactly_one_is_a_header_error(value):
    from mailcore.address_templates import compile_addresses

    with pytest.raises(HeaderError, match="the Cc header"):
        compile_addresses("Cc", "Desk <{{v}}>").render({"v": value})


@pytest.mark.parametrize(
    "template", ["a@example.com (x {{v}})", "{{v}} <a@example.com> tail", "<{{v}}", "a@[10.0.0.5]"]
)
def test_an_address_template_that_is_not_a_list_of_mailboxes_is_refused(template):
    from mailcore.address_templates import compile_addresses

    with pytest.raises(HeaderError):
        compile_addresses("Cc", template)


def test_the_writer_never_writes_a_bcc_header():
    with pytest.raises(HeaderError, match="never writes a Bcc"):
        header_line("Bcc", [("", "a@example.com")])


def test_own_bcc_line_names_only_its_address_written_like_to():
    from mailcore.headers import own_bcc_line

    assert own_bcc_line(("", "bcc@example.com")) == b"Bcc: bcc@example.com\n"
    assert own_bcc_line(("Bee Cee", "bcc@example.com")) == b"Bcc: Bee Cee <bcc@example.com>\n"
    assert own_bcc_line(("Zoë", "z@example.com")) == b"Bcc: " + header_line("To", [("Zoë", "z@example.com")])[4:]
    line = own_bcc_line(("x\r\nBcc: all@example.com", "bcc@example.com"))
    assert line.count(b"\n") == line.count(b"\n ") + 1 and b"\nBcc:" not in line


def test_an_encoded_word_decodes_under_a_known_text_charset_only():
    """An attacker's finding: each unknown charset name was handed to codecs.lookup, an import
    attempt whose failure Python keeps forever (50,000 names in one header froze the listener
    for seconds and kept 5 MB), and ``punycode`` (quadratic) or ``unicode_escape`` (lone
    surrogates) decoded. Those words now stay as written; real charsets decode, in any case."""
    import encodings

    from mailcore.headers import decode_words

    assert decode_words("=?UTF-8?Q?caf=C3=A9?= =?iso-8859-1?q?Andr=E9?= =?KOI8-U?B?9MXT1A==?=") == "caféAndréТест"
    before = len(encodings._cache)
    words = " ".join(f"=?x-made-up-{index}?q?a?=" for index in range(2000))
    assert decode_words(words) == words
    assert len(encodings._cache) == before
    for word in ("=?punycode?q?abc-?=", "=?unicode_escape?q?=5Cud800?=", "=?base64?q?YQ==?="):
        assert decode_words(word) == word
