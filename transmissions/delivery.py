"""The one seam to the SMTP relay (``ENGAGE_RELAY_URL``).

One persistent connection per worker process, opened lazily, re-opened after a fork or a
loss. ``Relay.send`` runs one SMTP transaction (MAIL, RCPT and DATA in one round trip when
the relay offers PIPELINING, RFC 2920; then the body) and classifies the outcome, in the
words of the message states (``transmissions.models.MessageState``):

- ``delivered``: the relay answered 2xx to the end of DATA (it owns the message now);
- ``delayed``: a 4xx answer (try again later);
- ``bounced``: a 5xx answer (never retry);
- :class:`RelayUnavailable` is raised when the connection is lost or cannot be made.
  ``handed_off_maybe`` tells whether the loss happened after the message body was sent
  (then the relay may have accepted it: the at-least-once window, see ``sending``).

A loss *before* the transaction starts (a relay that closed an idle connection) is retried
once on a fresh connection, since nothing of this message reached the relay.

A message whose envelope or header block holds a non-ASCII local part (``smtputf8``, RFC
6531/6532) is sent with the ``SMTPUTF8`` MAIL parameter when the relay offers it. When it
does not, nothing of the message is sent and that message alone is ``bounced`` with
:data:`NO_SMTPUTF8` (553 5.6.7, RFC 6531 §3.6 / RFC 5248): a relay without SMTPUTF8 cannot
carry it, and a retry would not change that.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["NO_SMTPUTF8", "Relay", "RelayResult", "RelayUnavailable", "bounce_class", "relay", "relay_reset"]

#: The (code, text) a message that needs SMTPUTF8 gets from a relay that does not offer it.
NO_SMTPUTF8 = (
    553,
    "5.6.7 the relay does not offer SMTPUTF8 (RFC 6531), which this message needs: an address "
    "has a non-ASCII local part; it was not sent",
)


@dataclass(frozen=True, slots=True)
class RelayResult:
    outcome: str  # "delivered" | "delayed" | "bounced"
    code: int
    text: str

    @property
    def reason(self) -> str:
        return f"{self.code} {self.text}".strip()


class RelayUnavailable(Exception):
    def __init__(self, reason: str, *, handed_off_maybe: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handed_off_maybe = handed_off_maybe


@dataclass(frozen=True, slots=True)
class RelayConfig:
    host: str
    port: int
    security: str  # "none" | "starttls" | "tls"
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> RelayConfig:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}.get(scheme)
        if security is None or not parts.hostname:
            raise ValueError(f"ENGAGE_RELAY_URL {url!r}: use smtp://, smtp+starttls:// or smtps://host:port")
        default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _outcome(code: int) -> str:
    if 200 <= code < 300:
        return "delivered"
    if 400 <= code < 500:
        return "delayed"
    return "bounced"


class Relay:
    """A persistent SMTP client connection to the relay."""

    def __init__(self, url: str, *, timeout: float = 30.0, local_hostname: str | None = None) -> None:
        self.config = RelayConfig.from_url(url)
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self._envelope: tuple[str, str, bool, bool] = ("", "", False, False)  # (from, to, smtputf8, pipelined)
        self._unfinished = False  # a transaction was started and not finished on _conn

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=self.timeout, local_hostname=self.local_hostname,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout, local_hostname=self.local_hostname)
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayUnavailable(f"cannot connect to relay {cfg.host}:{cfg.port}: {exc}") from exc
        return conn

    def close(self) -> None:
        if self._unfinished:
            self._drop()  # QUIT inside DATA would be body text
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def abandon(self) -> None:
        """Close the connection without QUIT: a transaction may be half written (an error
        between the steps), and the relay drops what it has of it (no end of DATA)."""
        self._drop()

    def _drop(self) -> None:
        self._unfinished = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def send(self, *, mail_from: str, rcpt_to: str, data: bytes, smtputf8: bool = False) -> RelayResult:
        """One SMTP transaction for one recipient, step after step."""
        self.envelope_send(mail_from=mail_from, rcpt_to=rcpt_to, smtputf8=smtputf8)
        refused = self.envelope_result()
        if refused is not None:
            return refused
        self.body_send(data)
        return self.body_result()

    # The same transaction in steps, for a caller that generates the next message while the
    # relay answers the envelope: envelope_send → envelope_result → body_send → body_result.

    def envelope_send(self, *, mail_from: str, rcpt_to: str, smtputf8: bool = False) -> None:
        """Start a transaction. With PIPELINING, MAIL, RCPT and DATA are written now in one
        go and their answers read by :meth:`envelope_result`; else that does it all.
        ``smtputf8``: the message needs SMTPUTF8 (see the module docstring)."""
        if self._unfinished:
            # The caller never finished the last transaction (an error between the steps):
            # this connection may be inside DATA, where the next envelope would be body text.
            self._drop()
        self._unfinished = True
        smtputf8 = smtputf8 or not (mail_from.isascii() and rcpt_to.isascii())
        self._envelope = (mail_from, rcpt_to, smtputf8, False)
        if self._conn is None:
            self._conn = self._connect()
        if not smtputf8 and self._pipelinable(self._conn, mail_from, rcpt_to):
            try:
                self._conn.send(_envelope_bytes(mail_from, rcpt_to))
            except (OSError, smtplib.SMTPServerDisconnected):
                self._drop()  # envelope_result starts again on a fresh connection
            else:
                self._envelope = (mail_from, rcpt_to, smtputf8, True)

    def envelope_result(self) -> RelayResult | None:
        """None once the relay said 354 (send the body next), else its refusal (4xx/5xx).

        A connection lost before the body (a relay that closed an idle connection) is
        retried once on a fresh one: nothing of this message reached the relay."""
        mail_from, rcpt_to, smtputf8, written = self._envelope
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                conn = self._conn
                if smtputf8 and not conn.has_extn("smtputf8"):
                    self._unfinished = False  # nothing of this message was sent
                    return RelayResult("bounced", *NO_SMTPUTF8)
                if not written and not smtputf8 and self._pipelinable(conn, mail_from, rcpt_to):
                    conn.send(_envelope_bytes(mail_from, rcpt_to))
                    written = True
                if written:
                    return self._pipelined_answers(conn)
                return self._envelope_one_by_one(conn, mail_from, rcpt_to, smtputf8)
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                self._drop()
                written = False
                if attempt == 2:
                    raise RelayUnavailable(f"connection to relay lost: {exc}") from exc
        raise AssertionError("unreachable")

    def body_send(self, data: bytes) -> None:
        """The message, dot-stuffed, and the end of DATA."""
        try:
            if self._conn is None:
                raise OSError("no connection")
            self._conn.send(_dot_stuffed(data))
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise RelayUnavailable(f"connection to relay lost during DATA: {exc}", handed_off_maybe=True) from exc

    def body_result(self) -> RelayResult:
        """The relay's answer to the end of DATA: 2xx means it owns the message now."""
        try:
            if self._conn is None:
                raise OSError("no connection")
            code, text = self._conn.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise RelayUnavailable(f"connection to relay lost during DATA: {exc}", handed_off_maybe=True) from exc
        self._unfinished = False
        return RelayResult(_outcome(code), code, _text(text))

    @staticmethod
    def _pipelinable(conn: smtplib.SMTP, mail_from: str, rcpt_to: str) -> bool:
        return _plain(mail_from) and _plain(rcpt_to) and conn.has_extn("pipelining")

    def _envelope_one_by_one(
        self, conn: smtplib.SMTP, mail_from: str, rcpt_to: str, smtputf8: bool = False
    ) -> RelayResult | None:
        """MAIL, RCPT and DATA one round trip each; the refusal, or None after 354."""
        options = ["SMTPUTF8"] if smtputf8 else []
        if not options and _plain(mail_from):
            conn.putcmd("mail", f"FROM:<{mail_from}>")
            code, text = conn.getreply()
        else:
            code, text = conn.mail(mail_from, options)
        if code != 250:
            return self._refused(conn, code, text)
        if not options and _plain(rcpt_to):
            conn.putcmd("rcpt", f"TO:<{rcpt_to}>")
            code, text = conn.getreply()
        else:
            code, text = conn.rcpt(rcpt_to)
        if code not in (250, 251):
            return self._refused(conn, code, text)
        conn.putcmd("data")
        code, text = conn.getreply()
        return None if code == 354 else self._refused(conn, code, text)

    def _pipelined_answers(self, conn: smtplib.SMTP) -> RelayResult | None:
        """The three answers to a pipelined envelope (RFC 2920): the first refusal, or None
        after 354. A relay that says 354 although it refused the sender or the recipient is
        sent an empty body's end, so the transaction closes cleanly."""
        mail, rcpt, data = conn.getreply(), conn.getreply(), conn.getreply()
        if mail[0] == 250 and rcpt[0] in (250, 251) and data[0] == 354:
            return None
        if data[0] == 354:
            conn.send(b".\r\n")
            conn.getreply()
        code, text = next(
            answer for answer, ok in ((mail, (250,)), (rcpt, (250, 251)), (data, (354,))) if answer[0] not in ok
        )
        return self._refused(conn, code, text)

    def _refused(self, conn: smtplib.SMTP, code: int, text: bytes | str) -> RelayResult:
        self._rset(conn)
        self._unfinished = False
        return RelayResult(_outcome(code), code, _text(text))

    @staticmethod
    def _rset(conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            pass  # the next transaction finds out and reconnects


_BARE_EOL = re.compile(rb"\r\n|\r|\n")
# An address smtplib's quoteaddr (an RFC 822 parse, ~40 us) would give back unchanged inside <>.
_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"]+@[^\s<>()\[\]\\,;:\"@]+")


def _plain(address: str) -> bool:
    return address.isascii() and _PLAIN_ADDRESS.fullmatch(address) is not None


def _envelope_bytes(mail_from: str, rcpt_to: str) -> bytes:
    return f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{rcpt_to}>\r\nDATA\r\n".encode("ascii")


def _dot_stuffed(data: bytes) -> bytes:
    """CRLF line ends, leading dots doubled, and the end-of-data marker (RFC 5321 §4.5.2)."""
    # LF only (what mailcore.mime writes): a plain replace is ~10x the regex.
    data = _BARE_EOL.sub(b"\r\n", data) if b"\r" in data else data.replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


# --- classification ----------------------------------------------------------------------------

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def bounce_class(code: int, text: str) -> str:
    """SparkPost's bounce classification for a relay answer (SPEC B §6.2 ``bounce_class``).

    From the enhanced status code when there is one (RFC 3463), else from the basic code:
    10 invalid recipient, 22 mailbox full, 23 too large, 21 routing/DNS, 50 policy block,
    54 relaying denied, 70 transient failure (4xx), 1 undetermined.
    """
    match = _ENHANCED.search(text or "")
    if match:
        klass, subject, detail = (int(group) for group in match.groups())
        if klass == 4:
            return "70"
        if subject == 1 and detail in (0, 1, 2, 3, 6):
            return "10"
        if (subject, detail) == (2, 1):
            return "10"
        if (subject, detail) == (2, 2):
            return "22"
        if (subject, detail) in ((3, 4), (2, 3)):
            return "23"
        if subject == 4:
            return "21"
        if (subject, detail) == (7, 1) and "relay" in text.lower():
            return "54"
        if subject == 7:
            return "50"
        return "1"
    if 400 <= code < 500:
        return "70"
    if code in (550, 551, 553):
        return "10"
    if code == 552:
        return "22"
    if code == 554:
        return "50"
    return "1"


# --- the process-wide relay ----------------------------------------------------------------------

_relay: tuple[int, str, Relay] | None = None


def relay() -> Relay:
    """This process's relay connection (a fork gets a fresh one; a new URL too)."""
    global _relay
    from django.conf import settings

    url = settings.ENGAGE_RELAY_URL
    pid = os.getpid()
    if _relay is None or _relay[0] != pid or _relay[1] != url:
        _relay = (pid, url, Relay(url, timeout=settings.ENGAGE_RELAY_TIMEOUT))
    return _relay[2]


def relay_reset() -> None:
    global _relay
    if _relay is not None and _relay[0] == os.getpid():
        _relay[2].close()
    _relay = None
