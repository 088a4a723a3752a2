"""Messages and the send step of the SMTP injection tests."""

from __future__ import annotations

import json
import smtplib

from transmissions.models import Transmission

MESSAGE = (
    "From: App <app@sender.example.com>\r\n"
    "To: Jo <jo@example.com>\r\n"
    "Subject: Your invoice\r\n"
    "{extra}"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    '<html><body><p>Hello</p><a href="https://example.com/invoice">invoice</a></body></html>\r\n'
)


def message(x_msys_api: dict | str | None = None) -> str:
    if x_msys_api is None:
        return MESSAGE.format(extra="")
    value = x_msys_api if isinstance(x_msys_api, str) else json.dumps(x_msys_api, separators=(",", ":"))
    return MESSAGE.format(extra=f"X-MSYS-API: {value}\r\n")


def send_all(transmission_id: int) -> Transmission:
    """Generate and hand off every message of the transmission in this process."""
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    for chunk in transmission_start_generation(transmission_id=transmission_id):
        chunk_send(transmission_id=transmission_id, chunk=chunk, token="test")
    return Transmission.objects.get(pk=transmission_id)


def transmission_id(reply: bytes) -> int:
    """The id in ``250 2.0.0 OK <id>`` (smtplib gives the text after the code)."""
    text = reply.decode()
    assert text.startswith("2.0.0 OK "), text
    return int(text.rsplit(" ", 1)[1])


def login(client: smtplib.SMTP, key: str) -> None:
    client.login("SMTP_Injection", key)


def inject(client: smtplib.SMTP, rcpts: list[str], data: str | bytes, mail_from: str = "bounce@sender.example.com"):
    assert client.mail(mail_from)[0] == 250
    for rcpt in rcpts:
        assert client.rcpt(rcpt)[0] == 250
    return client.data(data)


def inject_raw(client: smtplib.SMTP, rcpts: list[str], data: bytes, mail_from: str = "bounce@sender.example.com"):
    """``inject`` without smtplib's line-end rewriting (``SMTP.data`` turns a bare CR or LF
    into CRLF): ``data`` goes as it is, followed by CRLF.CRLF."""
    assert client.mail(mail_from)[0] == 250
    for rcpt in rcpts:
        assert client.rcpt(rcpt)[0] == 250
    assert client.docmd("DATA")[0] == 354
    client.send(data + b"\r\n.\r\n")
    return client.getreply()
