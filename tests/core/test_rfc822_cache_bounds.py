"""What ``mailcore.rfc822``'s per-process caches keep is bounded whatever the content: a
sender chooses the parts (an attacker's findings on the literal-part and Content-Type caches)."""

from __future__ import annotations

import pytest

from mailcore import rfc822
from tests.helpers import kept_bytes


def _message(index: int, parameter_bytes: int) -> str:
    pad = "A" * parameter_bytes
    folded = "\r\n ".join(pad[j : j + 900] for j in range(0, len(pad), 900))
    return (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=BB\r\n\r\n--BB\r\n"
        f"Content-Type: text/plain; charset=us-ascii; x{index}=\r\n {folded}\r\n\r\nhello\r\n--BB--\r\n"
    )


def test_a_part_content_type_of_any_size_is_not_kept_after_its_message():
    """A part's Content-Type is bounded only by the message's size: 64 messages with a
    distinct one of 15 KiB each keep nothing of them once compiled (each was kept, twice,
    before: 256 of 4 MiB held a gigabyte); one over ``MAX_PARAMETERS_CHARS`` is refused."""
    rfc822._utf8_content_type.kept.cache_clear()
    rfc822._mime_fields.kept.cache_clear()

    def build() -> None:
        for index in range(64):
            rfc822.compile_message(_message(index, 15 * 1024), substitute=False, substitute_headers=False)

    kept = kept_bytes(build)
    assert kept < 512 * 1024, f"{kept / 2**20:.1f} MiB kept after 64 messages of a 15 KiB Content-Type"
    with pytest.raises(rfc822.Rfc822Error, match="16384 characters"):
        rfc822.compile_message(_message(0, 2 * 1024 * 1024), substitute=False, substitute_headers=False)


def test_the_scan_and_literal_part_caches_keep_a_bounded_amount_and_still_keep_everyday_bodies():
    """16 distinct 64 Ki-character bodies with a link every 9 characters: the two caches kept
    about 45 MiB (180 for 64); a part with that many links is now scanned each time, not kept. An everyday
    body (a few hundred links) is still kept and shared."""
    rfc822._literal_cached.cache_clear()
    rfc822._scan_cached.cache_clear()
    bodies = [f"{i:06d}" + "http://a " * ((rfc822.SCAN_CACHE_MAX_CHARS - 6) // 9) for i in range(16)]
    kept = kept_bytes(lambda: [rfc822._literal_part(body, "text") for body in bodies])
    assert kept < 16 * 1024 * 1024, f"{kept / 2**20:.0f} MiB kept by the part caches"
    everyday = "<p>" + '<a href="https://shop.example.com/item">item</a> ' * 110 + "</p>"
    assert rfc822._literal_part(everyday, "html") is rfc822._literal_part(everyday, "html")


def test_each_part_is_read_by_its_own_first_mime_fields_while_readings_are_kept():
    """A part's Content-Type, Content-Disposition and Content-Transfer-Encoding are read once
    per distinct value (``rfc822._mime_fields``): each part still gets its own reading, the
    first of a repeated field, its own default type (a digest's parts), and a value too long
    to keep is read all the same."""
    rfc822._mime_fields.kept.cache_clear()

    def root(head: str, body: str = "body\n") -> rfc822.Entity:
        return rfc822.split_message(f"From: a@example.com\n{head}\n\n{body}".encode())

    latin = root("Content-Type: text/plain; charset=iso-8859-1\nContent-Type: text/html")
    utf8 = root("Content-Type: text/plain; charset=utf-8")
    assert (latin.content_type, latin.charset) == ("text/plain", "iso-8859-1")
    assert (utf8.content_type, utf8.charset) == ("text/plain", "utf-8")
    attached = root("Content-Type: text/html\nContent-Disposition: attachment; filename=a.html\n"
                    "Content-Transfer-Encoding: BASE64")  # fmt: skip
    assert (attached.content_type, attached.disposition, attached.cte) == ("text/html", "attachment", "base64")
    assert root("Content-Type: text/html").disposition is None and root("X-A: b").cte == "7bit"
    digest = root("Content-Type: multipart/digest; boundary=D", "--D\n\nFrom: c@example.com\n\nhi\n--D--\n")
    mixed = root("Content-Type: multipart/mixed; boundary=M", "--M\n\nhi\n--M--\n")
    assert [part.content_type for part in digest.children] == ["message/rfc822"]
    assert [part.content_type for part in mixed.children] == ["text/plain"]
    kept = rfc822._mime_fields.kept.cache_info().currsize
    long = root("Content-Type: text/plain; charset=utf-8; x=" + "a" * 1000)
    assert (long.content_type, long.charset) == ("text/plain", "utf-8")
    assert rfc822._mime_fields.kept.cache_info().currsize == kept  # the long value is not kept
