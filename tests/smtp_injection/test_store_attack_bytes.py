"""Non-UTF-8 bytes and NULs in the SMTP commands (aiosmtpd decodes arguments with
surrogateescape): refused at the command, or the message is stored; never a 451 from the
group store's JSON (a lone surrogate cannot be encoded, jsonb refuses \\u0000)."""

from __future__ import annotations

import pytest

from tests.smtp_injection.helpers import login, message, transmission_id
from transmissions.models import Transmission

CASES = {
    "ehlo": (b"EHLO cl\xffient.example.com", b"MAIL FROM:<bounce@sender.example.com>", b"RCPT TO:<jo@example.com>"),
    "ehlo-nul": (b"EHLO cl\x00ient.example.com", b"MAIL FROM:<bounce@sender.example.com>", b"RCPT TO:<jo@example.com>"),
    "ehlo-surrogate-nul": (
        b"EHLO \xed\xa0\x80.example.com",
        b"MAIL FROM:<bounce@sender.example.com>",
        b"RCPT TO:<jo@example.com>",
    ),
    "rcpt-nul": (b"EHLO client.example.com", b"MAIL FROM:<bounce@sender.example.com>", b"RCPT TO:<j\x00o@example.com>"),
    "rcpt-param": (
        b"EHLO client.example.com",
        b"MAIL FROM:<bounce@sender.example.com>",
        b"RCPT TO:<jo@example.com> NOTIFY=\xff\x00",
    ),
    "mail-param": (
        b"EHLO client.example.com",
        b"MAIL FROM:<bounce@sender.example.com> ENVID=\xff\x00",
        b"RCPT TO:<jo@example.com>",
    ),
    "mail": (
        b"EHLO client.example.com",
        b"MAIL FROM:<bo\xffunce@sender.example.com> SMTPUTF8",
        b"RCPT TO:<jo@example.com>",
    ),
    "rcpt": (
        b"EHLO client.example.com",
        b"MAIL FROM:<bounce@sender.example.com> SMTPUTF8",
        b"RCPT TO:<j\xffo@example.com>",
    ),
    "rcpt-domain": (
        b"EHLO client.example.com",
        b"MAIL FROM:<bounce@sender.example.com> SMTPUTF8",
        b"RCPT TO:<jo@ex\xffample.com>",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_utf8_command_bytes(start_listener, smtp_key, name):
    listener = start_listener()
    client = listener.client()
    login(client, smtp_key)
    ehlo, mail, rcpt = CASES[name]
    replies = []
    for line in (ehlo, mail, rcpt):
        client.send(line + b"\r\n")
        replies.append(client.getreply())
    if all(code < 300 for code, _ in replies):
        assert client.docmd("DATA")[0] == 354
        client.send(message().encode() + b"\r\n.\r\n")
        code, reply = client.getreply()
        assert code != 451, (name, reply)
        if code == 250:
            assert Transmission.objects.filter(pk=transmission_id(reply)).exists()
