"""SMTP replies as values (PURE: the standard library only, no I/O).

:class:`SmtpReply` is what the pure SMTP-injection code (``mailcore.msys_api``,
``mailcore.smtp_settings``, ``mailcore.smtp_policy``) hands the listener to send, and
:class:`SmtpReplyError` the exception that carries one. The listener writes
``reply.line()`` and nothing else, so a reply can never break the session: it is built
checked (RFC 5321 §4.2 reply codes, RFC 3463 enhanced status codes, RFC 5321 §4.5.3.1.5's
512-octet reply line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_REPLY_TEXT", "SmtpReply", "SmtpReplyError", "reply_text"]

#: Characters of reply text: 512 octets per reply line (RFC 5321 §4.5.3.1.5) less the code,
#: the enhanced code, two spaces and CR LF, with room to spare.
MAX_REPLY_TEXT = 480

_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def reply_text(text: str) -> str:
    """``text`` made fit for a reply line: every character outside printable ASCII becomes
    ``?`` (a reply is ASCII, RFC 5321 §4.2; this also keeps CR LF out), and it is cut to
    :data:`MAX_REPLY_TEXT` characters with ``...``."""
    text = _UNPRINTABLE.sub("?", text)
    if len(text) > MAX_REPLY_TEXT:
        text = text[: MAX_REPLY_TEXT - 3] + "..."
    return text


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One SMTP reply: ``code`` (a three-digit reply code, 2xx-5xx, RFC 5321 §4.2),
    ``enhanced`` (``"class.subject.detail"`` of RFC 3463, its class the first digit of
    ``code``, e.g. ``"5.6.0"``) and ``text`` (printable ASCII, at most
    :data:`MAX_REPLY_TEXT` characters; pass data through :func:`reply_text`).

    Raises ``ValueError`` when any of the three is not so: a policy builds replies of its
    own choosing, and a bad one must not reach the wire.
    """

    code: int
    enhanced: str
    text: str

    def __post_init__(self) -> None:
        if type(self.code) is not int or not 200 <= self.code <= 599:
            raise ValueError(f"an SMTP reply code is a number 200-599, not {self.code!r:.40}")
        if not isinstance(self.enhanced, str) or not _ENHANCED.fullmatch(self.enhanced):
            raise ValueError(f"an enhanced status code is 'class.subject.detail' (RFC 3463), not {self.enhanced!r:.40}")
        if self.enhanced[0] != str(self.code)[0]:
            raise ValueError(f"the enhanced status code {self.enhanced} does not match the reply code {self.code}")
        if not isinstance(self.text, str) or reply_text(self.text) != self.text:
            raise ValueError(f"reply text must be printable ASCII of at most {MAX_REPLY_TEXT} characters")

    def line(self) -> str:
        """The reply as sent, without the line end: ``"550 5.6.0 text"``."""
        return f"{self.code} {self.enhanced} {self.text}"

    def __str__(self) -> str:
        return self.line()


class SmtpReplyError(Exception):
    """A refusal the listener answers with :attr:`reply` (``str(error)`` is the reply line)."""

    def __init__(self, reply: SmtpReply) -> None:
        super().__init__(reply.line())
        self.reply = reply
