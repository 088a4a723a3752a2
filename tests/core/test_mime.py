"""The direct MIME writer against the ``email`` package's generator: same bytes (boundaries
aside) for every text/html/AMP combination and header shape. Pure: no database."""

from __future__ import annotations

import email
import re
from email.policy import default

from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.headers import header_block
from mailcore.mime import _build_email, build_message

_BOUNDARY = re.compile(rb"={15}\d{19}==(\.\d+)?")


def via_email(headers, text, html, amp_html=None) -> bytes:
    return _build_email(
        top=header_block(headers), text=text, html=html, amp_html=amp_html, attachments=[], inline_images=[]
    )


def same(headers, text, html, amp_html=None) -> None:
    direct = build_message(headers=headers, text=text, html=html, amp_html=amp_html)
    reference = via_email(headers, text, html, amp_html)
    assert _BOUNDARY.sub(b"B", direct) == _BOUNDARY.sub(b"B", reference)


HEADERS = [("From", "news@sender.test"), ("To", '"Jo" <jo@example.com>'), ("Subject", "Hello Jo"),
           ("Message-ID", "<abc@sender.test>")]  # fmt: skip
body_text = st.lists(st.sampled_from(["a", "b", " ", "\n", "\r\n", "\r", ".", "é", "€", "x" * 950, "\t", "--"])).map(
    "".join
)
header_text = st.lists(st.sampled_from(["a", "B", " ", "  ", "\t", ",", ";", "<", ">", "é", "@", "x" * 40, "="])).map(
    "".join
)


def test_text_and_html_are_a_multipart_alternative_like_the_generators():
    same(HEADERS, "Hi\nthere", "<p>Hi</p>\n")


def test_a_single_part_carries_its_structural_headers_at_the_top_level():
    same(HEADERS, None, "<p>hé</p>")
    same(HEADERS, "only text", None)


def test_amp_goes_between_text_and_html():
    same(HEADERS, "t", "<p>h</p>", "<html amp4email>a</html>")


def test_long_and_non_ascii_headers_are_folded_and_encoded_like_the_generators():
    unsubscribe = "<mailto:unsubscribe@localhost?subject=unsubscribe>, <http://localhost:8000/u/" + "A" * 90 + ">"
    same([*HEADERS, ("Subject", "Héllo wörld " * 8), ("List-Unsubscribe", unsubscribe), ("X-Empty", "")], "t", "h")


def test_a_boundary_found_in_a_part_is_drawn_again(monkeypatch):
    draws = iter([1, 1, 2])
    monkeypatch.setattr("mailcore.mime.random.randrange", lambda _n: next(draws))
    taken = "=" * 15 + "1".zfill(19) + "=="
    direct = build_message(headers=HEADERS, text=f"see --{taken}", html="x")
    boundary = email.message_from_bytes(direct, policy=default).get_boundary()
    assert boundary != taken and direct.count(boundary.encode()) == 4  # header, 2 delimiters, close


@settings(max_examples=300, deadline=None)
@given(text=st.none() | body_text, html=st.none() | body_text, amp=st.none() | body_text, value=header_text)
def test_any_bodies_and_header_values_give_the_generators_bytes(text, html, amp, value):
    if text is None and html is None and amp is None:
        return
    same([("From", "a@b.test"), ("Subject", value), ("X-Custom", value.strip() or "v")], text, html, amp)


@settings(max_examples=100, deadline=None)
@given(text=body_text, html=body_text)
def test_the_parts_read_back_as_given(text, html):
    message = email.message_from_bytes(build_message(headers=HEADERS, text=text, html=html), policy=default)
    plain, rich = (part.get_content() for part in message.iter_parts())
    assert plain.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") == text.replace("\r\n", "\n").replace(
        "\r", "\n"
    ).rstrip("\n")
    assert rich.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n") == html.replace("\r\n", "\n").replace(
        "\r", "\n"
    ).rstrip("\n")
