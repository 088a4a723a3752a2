"""Build one outgoing message with the stdlib ``email`` package: PURE (no Django, no clock).

Structure, outermost first, each level only when needed::

    multipart/mixed                  attachments
      multipart/alternative          text + html (+ text/x-amp-html between them)
        text/plain
        multipart/related            inline images (Content-ID = name)
          text/html

Headers whose value is not ASCII are RFC 2047 encoded; addresses use ``formataddr``. A
body part that is ASCII with short lines goes as 7bit, anything else as base64 (the C
codec: quoted-printable is pure Python and costs ~1 ms per 10 KB part).

The common case (text, html and/or AMP parts, no attachment and no inline image) is written
as bytes directly (:func:`_build_direct`), byte for byte what ``email.generator`` writes for
the same tree (tests/transmissions/test_mime.py compares them): the generator spent ~0.5 ms
per message folding short ASCII headers and compiling a regex per boundary. Long or
non-ASCII header values still go through the stdlib's folding (``compat32.fold_binary``).
"""

from __future__ import annotations

import random
import re
import sys
from base64 import encodebytes
from collections.abc import Iterable, Mapping
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formataddr

from recipient_lists.recipients import split_address

__all__ = ["address_header", "build_message", "header_line", "to_header"]

_UTF8 = Charset("utf-8")
_UTF8.body_encoding = BASE64
_UTF8.header_encoding = BASE64


def header_value(value: str) -> str | Header:
    """``value`` as is when ASCII, else an RFC 2047 encoded word list."""
    if value.isascii():
        return value
    return Header(value, _UTF8, maxlinelen=76)


def address_header(email: str, name: str | None = None) -> str:
    """``"Name" <email>`` (name RFC 2047 encoded when not ASCII), or the bare email."""
    if not name:
        return email
    return formataddr((name, email), charset="utf-8")


def from_parts(value: str | Mapping[str, str]) -> tuple[str, str]:
    """Rendered ``content.from`` → ``(email, name)``."""
    if isinstance(value, Mapping):
        return str(value.get("email") or "").strip(), str(value.get("name") or "").strip()
    name, email = split_address(str(value))
    return email, name


def to_header(address: Mapping[str, str], raw_address: str | None = None) -> str:
    """The ``To:`` header of a recipient (SPEC B §3.2): ``header_to`` replaces the email;
    a name gives ``"name" <email>``; a recipient given as a string keeps that string."""
    email = address.get("header_to") or address["email"]
    if raw_address is not None and not address.get("header_to"):
        return raw_address.strip()
    return address_header(email, address.get("name"))


def _is_7bit(body: str) -> bool:
    return body.isascii() and max(map(len, body.splitlines() or [""])) <= 900


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    if _is_7bit(body):
        part.set_payload(body, "us-ascii")  # sets Content-Transfer-Encoding: 7bit
    else:
        part.set_payload(body, _UTF8)
    return part


def _file_part(item: Mapping[str, str]) -> MIMEBase:
    maintype, _, subtype = item["type"].partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    data = item["data"]
    # Wrap the client's base64 at 76 characters (SPEC B §1.3) without decoding it.
    compact = "".join(data.split())
    part.set_payload("\n".join(compact[i : i + 76] for i in range(0, len(compact), 76)))
    part["Content-Transfer-Encoding"] = "base64"
    return part


def build_message(
    *,
    headers: Iterable[tuple[str, str]],
    text: str | None,
    html: str | None,
    amp_html: str | None = None,
    attachments: Iterable[Mapping[str, str]] = (),
    inline_images: Iterable[Mapping[str, str]] = (),
) -> bytes:
    """The message as bytes (LF line ends; the relay seam converts to CRLF).

    ``headers`` are (name, value) pairs in order, values already final (addresses built);
    non-ASCII values are encoded here.
    """
    images = list(inline_images)
    files = list(attachments)
    alternatives = [(sub, value) for sub, value in (("plain", text), ("x-amp-html", amp_html), ("html", html))
                    if value is not None]  # fmt: skip
    if alternatives and not images and not files:
        return _build_direct(list(headers), alternatives)
    return _build_email(headers=headers, text=text, html=html, amp_html=amp_html, attachments=files,
                        inline_images=images)  # fmt: skip


def _build_email(
    *,
    headers: Iterable[tuple[str, str]],
    text: str | None,
    html: str | None,
    amp_html: str | None,
    attachments: list[Mapping[str, str]],
    inline_images: list[Mapping[str, str]],
) -> bytes:
    """Any structure, through the ``email`` package's tree and generator."""
    body: MIMEBase | None = None
    html_part: MIMEBase | None = _text_part(html, "html") if html is not None else None
    images = inline_images
    if html_part is not None and images:
        related = MIMEMultipart("related")
        related.attach(html_part)
        for image in images:
            part = _file_part(image)
            part["Content-ID"] = f"<{image['name']}>"
            part.add_header("Content-Disposition", "inline", filename=image["name"])
            related.attach(part)
        html_part = related
    alternatives: list[MIMEBase] = []
    if text is not None:
        alternatives.append(_text_part(text, "plain"))
    if amp_html is not None:
        alternatives.append(_text_part(amp_html, "x-amp-html"))
    if html_part is not None:
        alternatives.append(html_part)
    if len(alternatives) == 1:
        body = alternatives[0]
    else:
        body = MIMEMultipart("alternative")
        for part in alternatives:
            body.attach(part)
    files = attachments
    if files:
        mixed = MIMEMultipart("mixed")
        mixed.attach(body)
        for item in files:
            part = _file_part(item)
            part.add_header("Content-Disposition", "attachment", filename=item["name"])
            mixed.attach(part)
        body = mixed
    # Top-level headers go first, in the caller's order.
    structural = list(body.items())
    for name in list(body.keys()):
        del body[name]
    for name, value in headers:
        body[name] = header_value(value)
    body["MIME-Version"] = "1.0"
    for name, value in structural:
        if name.lower() != "mime-version":
            body[name] = value
    return body.as_bytes()


# --- the direct writer ---------------------------------------------------------------------------
_NLCRE = re.compile(r"\r\n|\r|\n")
_BOUNDARY_FORMAT = "=" * 15 + "%0" + str(len(repr(sys.maxsize - 1))) + "d=="


def header_line(name: str, value: str) -> bytes:
    """``name: value`` and LF, folded exactly as ``email.generator`` folds it."""
    if value.isascii() and len(name) + len(value) <= 76 and "\n" not in value and "\r" not in value:
        if value == value.strip(" \t") or not value.strip():
            return f"{name}: {value}\n".encode("ascii")
    return compat32.fold_binary(name, header_value(value))


def _part_bytes(subtype: str, body: str, *, mime_version: bool) -> tuple[bytes, bytes]:
    """(structural headers, body) of one text part, as ``_text_part`` + the generator."""
    version = b"MIME-Version: 1.0\n" if mime_version else b""
    if _is_7bit(body):
        head = f'Content-Type: text/{subtype}; charset="us-ascii"\nContent-Transfer-Encoding: 7bit\n'
        return version + head.encode("ascii"), _NLCRE.sub("\n", body).encode("ascii")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: base64\n'
    return version + head.encode("ascii"), encodebytes(body.encode("utf-8"))


def _build_direct(headers: Iterable[tuple[str, str]], parts: list[tuple[str, str]]) -> bytes:
    top = b"".join(header_line(name, value) for name, value in headers) + b"MIME-Version: 1.0\n"
    if len(parts) == 1:
        head, body = _part_bytes(parts[0][0], parts[0][1], mime_version=False)
        return top + head + b"\n" + body
    texts = [b"%s\n%s" % _part_bytes(subtype, value, mime_version=True) for subtype, value in parts]
    boundary = _BOUNDARY_FORMAT % random.randrange(sys.maxsize)
    marker = f"--{boundary}".encode("ascii")
    counter = 0
    # Stricter than the generator's check (any occurrence, not only a whole line): never wrong.
    while any(marker in text for text in texts):
        marker = f"--{_BOUNDARY_FORMAT % random.randrange(sys.maxsize)}.{counter}".encode("ascii")
        counter += 1
    out = [top, b'Content-Type: multipart/alternative;\n boundary="', marker[2:], b'"\n\n']
    for text in texts:
        out += (marker, b"\n", text, b"\n")
    out += (marker, b"--\n")
    return b"".join(out)
