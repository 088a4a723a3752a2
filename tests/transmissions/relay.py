"""An in-process SMTP relay for tests (aiosmtpd Controller on a free loopback port).

``answers`` is a list of SMTP replies used in order for the end of DATA ("250 OK" when it
runs out); ``delay`` slows each DATA down; ``refuse`` maps an address to the reply its RCPT
gets, ``refuse_mail`` the reply every MAIL gets; ``pipelining`` says whether EHLO offers
PIPELINING (RFC 2920), as real relays do; ``Relay(smtputf8=False)`` offers no SMTPUTF8.
A message is kept only when the relay answers
2xx AND the client's connection is still open at that moment: it models a relay that
commits a message when it answers. A killed client's connection closes only once the
kernel has torn its process down (milliseconds), so a message answered meanwhile is kept
although the client never reads the answer: the at-least-once window of
transmissions/sending.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from engage.devsink import Pipelining


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple = ()  # the client's (address, port): one per connection
    mail_options: list[str] = field(default_factory=list)

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class RelayHandler(Pipelining):
    answers: list[str] = field(default_factory=list)
    delay: float = 0.0
    refuse: dict[str, str] = field(default_factory=dict)
    refuse_mail: str | None = None
    pipelining: bool = True
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            answer = self.answers.pop(0) if self.answers else "250 2.0.0 OK"
        if answer.startswith("2"):
            transport = getattr(server, "transport", None)
            reader = getattr(server, "_reader", None)
            if (transport is not None and transport.is_closing()) or (reader is not None and reader.at_eof()):
                return "451 4.3.0 client gone"
            with self.lock:
                self.received.append(
                    Received(
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        envelope.original_content,
                        session.peer,
                        list(envelope.mail_options),
                    )  # fmt: skip
                )
        return answer


class Relay:
    """``smtputf8``: whether EHLO offers SMTPUTF8 (RFC 6531)."""

    def __init__(self, handler: RelayHandler | None = None, *, smtputf8: bool = True) -> None:
        self.handler = handler or RelayHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            decode_data=False,
            data_size_limit=None,
            enable_SMTPUTF8=smtputf8,
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> Relay:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
