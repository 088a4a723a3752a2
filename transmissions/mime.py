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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr

from recipient_lists.recipients import split_address

__all__ = ["address_header", "build_message", "to_header"]

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


def _text_part(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    if body.isascii() and max(map(len, body.splitlines() or [""])) <= 900:
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
    body: MIMEBase | None = None
    html_part: MIMEBase | None = _text_part(html, "html") if html is not None else None
    images = list(inline_images)
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
    files = list(attachments)
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
