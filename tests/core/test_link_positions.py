"""Links as written (issue 15): the scanners number each part's links and keep the URL as
written, the click token carries both compactly, and tokens made before keep decoding."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from mailcore.language import compile_part
from mailcore.links import scan_html, scan_text
from mailcore.tokens import InvalidToken, TokenSigner

KEY = (7, b"old-token-test-key-0123456789abcdef")
#: A click token made by the codec before link positions existed (main at 8589a86), for
#: https://x.example/account?id=42 named "Raw URL".
#: Two literals joined with "+", so each is in this file as written (tests/project/test_secrets.py
#: refuses every string of the source as a secret by finding it in the files).
OLD_CLICK = (
    "AQYHZVPxAAIARAAAYyyLVNU_CgAAAAAAAAAQkltudWxsLG51bGwsImFubkBleGFtcGxlLm9yZyIsInNwcmluZyIsIndlbGNvbWUiLDNdAAAHUmF3"
    + "IFVSTGh0dHBzOi8veC5leGFtcGxlL2FjY291bnQ_aWQ9NDJEY2jaGpPAKmT9KwKhNptH"
)
HTML = (
    '<html><body><a href="https://x.example/">Top</a> <a href="https://x.example/account?id={{id}}&amp;s=1">'
    'Account</a> <a href="mailto:a@b.c">mail</a> <a href="https://x.example/">Footer</a></body></html>'
)


def _signer():
    return TokenSigner([KEY])


def _message(signer=None):
    return (signer or _signer()).for_message(
        message_id="0000632c8b54d53f0a00", transmission_id="4242", rcpt_to="ann@example.org",
        issued_at=1_700_000_000, campaign_id="spring", template_id="welcome", template_version=3,
    )  # fmt: skip


def _decode(token):
    return _signer().decode(token, now=1_700_000_000, max_age=10)


def test_html_links_are_numbered_in_source_order_with_the_url_as_written():
    links = scan_html(HTML).links
    assert [(link.position, link.written) for link in links] == [
        (1, "https://x.example/"),
        (2, "https://x.example/account?id={{id}}&s=1"),
        (3, "https://x.example/"),
    ]


def test_text_links_are_numbered_with_the_url_as_written():
    links = scan_text("Top https://x.example/ and https://x.example/a?id={{id}}, again https://x.example/.").links
    assert [(link.position, link.written) for link in links] == [
        (1, "https://x.example/"),
        (2, "https://x.example/a?id={{id}}"),
        (3, "https://x.example/"),
    ]


class _Recorder:
    def __init__(self):
        self.seen = []

    def link(self, url, span):
        self.seen.append((url, span.position, span.written))
        return None

    def pixel(self, kind):
        return ""


def test_a_personalised_link_keeps_one_position_and_written_url_for_300_recipients():
    part = compile_part(HTML, part="html", mode="html", scan=scan_html(HTML))
    tracker = _Recorder()
    for number in range(300):
        part.render({"id": str(number)}, tracker)
    account = [seen for seen in tracker.seen if "account" in seen[0]]
    assert len({url for url, _, _ in account}) == 300
    assert {(position, written) for _, position, written in account} == {(2, "https://x.example/account?id={{id}}&s=1")}
    assert {position for url, position, _ in tracker.seen if url == "https://x.example/"} == {1, 3}


def test_click_token_carries_position_and_written_url():
    token = _message().click("https://x.example/account?id=42", "Raw URL", position=2,
                             written="https://x.example/account?id={{id}}")  # fmt: skip
    decoded = _decode(token)
    assert decoded.target_url == "https://x.example/account?id=42"
    assert (decoded.link_position, decoded.link_written_url) == (2, "https://x.example/account?id={{id}}")
    assert decoded.link_name == "Raw URL"


def test_a_link_written_as_sent_costs_two_bytes_and_decodes_to_its_target():
    tokens = _message()
    plain = tokens.click("https://x.example/", "Top")
    numbered = tokens.click("https://x.example/", "Top", position=3, written="https://x.example/")
    assert len(base64.urlsafe_b64decode(numbered + "==")) - len(base64.urlsafe_b64decode(plain + "==")) == 2
    decoded = _decode(numbered)
    assert (decoded.link_position, decoded.link_written_url) == (3, "https://x.example/")


def test_the_written_url_shares_its_prefix_with_the_target():
    tokens = _message()
    target = "https://x.example/account/" + "p" * 200 + "?id=42"
    written = "https://x.example/account/" + "p" * 200 + "?id={{id}}"
    short = tokens.click(target, "Raw URL", position=1)
    long = tokens.click(target, "Raw URL", position=1, written=written)
    assert len(long) - len(short) < 16  # 4 bytes of lengths and "{{id}}", not the whole URL
    assert _decode(long).link_written_url == written


def test_non_ascii_urls_round_trip_when_the_shared_prefix_ends_inside_a_character():
    tokens = _message()
    token = tokens.click("https://x.example/é", "n", position=1, written="https://x.example/è{{v}}")
    assert _decode(token).link_written_url == "https://x.example/è{{v}}"


def test_a_token_made_before_positions_existed_still_decodes():
    decoded = _decode(OLD_CLICK)
    assert decoded.kind == "click" and decoded.target_url == "https://x.example/account?id=42"
    assert (decoded.link_position, decoded.link_written_url) == (0, None)
    assert (decoded.message_id, decoded.transmission_id, decoded.rcpt_to) == (
        "0000632c8b54d53f0a00",
        "4242",
        "ann@example.org",
    )


def test_a_token_made_without_position_is_byte_for_byte_the_old_one():
    assert _message().click("https://x.example/account?id=42", "Raw URL") == OLD_CLICK


@pytest.mark.parametrize("position", [0, 70_000])
def test_positions_outside_1_to_65535_are_left_out(position):
    decoded = _decode(_message().click("https://x.example/", "n", position=position, written="https://y/"))
    assert (decoded.link_position, decoded.link_written_url) == (0, None)


def test_a_signed_tail_claiming_a_written_url_without_position_is_refused():
    tokens = _message()
    token = tokens.click("https://x.example/", "n")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    # Re-sign a tail whose flags say "written URL" without "position".
    body = bytes(raw[:-16])
    flag_at = body.index(b"\x00\x00\x01n")  # tail flags 0, name length 1, "n"
    forged = body[:flag_at] + b"\x04" + body[flag_at + 1 :]
    tag = hmac.new(KEY[1], forged, hashlib.sha256).digest()[:16]
    forged_token = base64.urlsafe_b64encode(forged + tag).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        _decode(forged_token)
