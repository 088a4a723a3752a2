"""How real SMTP clients write an ``X-MSYS-API`` header (SMTP-INJECTION.md §1.3, §3.1),
rebuilt with the standard library, and the listener's way back to the raw values."""

from __future__ import annotations

import email.charset
import email.header
import email.policy
import io
from email.generator import BytesGenerator
from email.message import EmailMessage, Message

from mailcore.msys_api import msys_api_values
from mailcore.rfc822 import split_message


def _encoded(value: str, encoding: int, max_line: int) -> str:
    charset = email.charset.Charset("utf-8")
    charset.header_encoding = encoding
    header = email.header.Header(value, charset=charset, maxlinelen=max_line, header_name="X-MSYS-API")
    return header.encode(linesep="\r\n")


def nodemailer(value: str) -> str:
    """Nodemailer 6: a value with a ``"`` is written as Q encoded words of UTF-8, one a line,
    lines of at most 64 characters (``mimeFuncs.encodeWords(value, 'Q', 52)``; 110 lines for
    2 KB, §1.3)."""
    return _encoded(value, email.charset.QP, 64)


def phpmailer(value: str, encoding: int = email.charset.BASE64) -> str:
    """PHPMailer 6: a line over 998 characters is written as encoded words (B when more than
    a third of it needs escaping, else Q), lines of up to 998 characters (§1.3)."""
    return _encoded(value, encoding, 998)


def message_bytes(*values: str, policy: email.policy.Policy | None = None) -> bytes:
    """A whole message with the header(s): ``policy`` ``email.policy.SMTP`` writes it as
    Python's ``EmailMessage`` does (encoded words, 77-character lines, §1.3); None writes it
    as Django 5.2's SMTP backend does (compat32, an ASCII value on one line, however long)."""
    if policy is not None:
        message = EmailMessage(policy=policy)
        message["Subject"] = "Hello"
        for value in values:
            message["X-MSYS-API"] = value
        message.set_content("Hi")
        return bytes(message)
    legacy = Message()
    legacy["Subject"] = "Hello"
    for value in values:
        legacy["X-MSYS-API"] = value
    legacy.set_payload("Hi")
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, maxheaderlen=0).flatten(legacy, linesep="\r\n")
    return out.getvalue()


def raw_values(message: bytes) -> list[str]:
    """What the listener hands ``msys_api_parse``: the raw values of a received message."""
    data = message.replace(b"\r\n", b"\n")
    return msys_api_values(data, split_message(data).fields)
