"""The development SMTP sink: accepts every message and keeps it as an .eml file, indexed for
the console's sink pages (``console/sink_mailbox.py`` owns the files and their index).

``scripts/run`` starts it and points ``ENGAGE_RELAY_URL`` at it, so a newcomer can see
what Engage sent (and click its tracked links) without a real mail server.
Run: ``python -m engage.devsink --port 1025 --dir var/sink``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from console.sink_mailbox import Mailbox


class Pipelining:
    """aiosmtpd handler mixin: EHLO offers PIPELINING (RFC 2920), as production relays do.
    aiosmtpd reads pipelined commands in order and answers each; it only does not say so."""

    pipelining = True

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses


class SinkHandler(Pipelining):
    """Keeps each message in ``directory`` through one :class:`Mailbox`, open while it runs."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.mailbox = Mailbox(directory)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)  # decode_data is off: the content stays bytes
        self.mailbox.deliver(mail_from=str(envelope.mail_from), rcpt_tos=envelope.rcpt_tos, data=data)
        return "250 2.0.0 OK queued in the development sink"


async def serve(host: str, port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = SinkHandler(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=True, data_size_limit=None), host, port
    )
    print(f"engage: development SMTP sink on {host}:{port}, keeping mail in {directory}", flush=True)
    # SIGTERM (scripts/run's stop) ends it as a clean exit, status 0, as the other processes do
    # (it showed as "sink.1 stopped (rc=-15)", which reads as a crash).
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    async with server:
        await stopping.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument(
        "--dir", default=os.environ.get("ENGAGE_SINK_DIR", str(Path(__file__).resolve().parent.parent / "var" / "sink"))
    )
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, Path(args.dir)))


if __name__ == "__main__":
    main()
