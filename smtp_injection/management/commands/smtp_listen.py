"""``manage.py smtp_listen``: the SMTP injection listener (issue 13; ``smtp_injection.server``).

Listens on ``ENGAGE_SMTP_HOST:ENGAGE_SMTP_PORT`` (2525) until SIGTERM or SIGINT, then
shuts down gracefully (DATA in flight finishes). ``ENGAGE_SMTP_POLICY``, when set, must
import as a callable or the command refuses to start. STARTTLS uses ``ENGAGE_SMTP_TLS_CERT`` /
``ENGAGE_SMTP_TLS_KEY``, or a self-signed pair kept under ``ENGAGE_VAR_DIR/smtp-tls/`` when
both are unset. Refuses to start when plain-text AUTH is allowed on a non-loopback address.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailcore.smtp_policy import PolicyView
from smtp_injection.server import Listener, ListenerConfig, is_loopback
from smtp_injection.services import smtp_policy_load
from smtp_injection.tls import TlsSetupError, self_signed_pair, tls_context

log = logging.getLogger("smtp_injection")


class Command(BaseCommand):
    help = "Run the SMTP injection listener (SMTP_Injection + an API key with smtp/inject)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=None, help="bind address (default ENGAGE_SMTP_HOST)")
        parser.add_argument("--port", type=int, default=None, help="port (default ENGAGE_SMTP_PORT)")

    def handle(self, *args: Any, **options: Any) -> None:
        # aiosmtpd logs every command line (and so every address) at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        host = options["host"] or settings.ENGAGE_SMTP_HOST
        port = options["port"] if options["port"] is not None else settings.ENGAGE_SMTP_PORT
        if settings.ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH and not is_loopback(host):
            raise CommandError(
                f"ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH is only allowed on a loopback address, not {host!r}: "
                "keys would cross the network in clear"
            )
        config = ListenerConfig(
            hostname=settings.ENGAGE_SMTP_HOSTNAME,
            tls_context=self._tls(),
            plaintext_auth=settings.ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH,
            max_message_size=settings.ENGAGE_SMTP_MAX_MESSAGE_SIZE,
            max_line_length=settings.ENGAGE_SMTP_MAX_LINE_LENGTH,
            max_rcpts=settings.ENGAGE_SMTP_MAX_RCPTS,
            max_connections=settings.ENGAGE_SMTP_MAX_CONNECTIONS,
            max_connections_per_key=settings.ENGAGE_SMTP_MAX_CONNECTIONS_PER_KEY,
            max_connections_per_ip=settings.ENGAGE_SMTP_MAX_CONNECTIONS_PER_IP,
            timeout=settings.ENGAGE_SMTP_TIMEOUT,
            auth_attempts=settings.ENGAGE_SMTP_AUTH_ATTEMPTS,
            shutdown_grace=settings.ENGAGE_SMTP_SHUTDOWN_GRACE,
            policy=self._policy(),
            policy_timeout=settings.ENGAGE_SMTP_POLICY_TIMEOUT,
        )
        if asyncio.run(self._serve(config, host, port)):
            # Policy calls still running: their threads are daemons (PolicyThreads), but what a
            # call waits on may not be (a library's ThreadPoolExecutor worker, which the
            # interpreter joins at exit: a SIGTERM'd listener stayed forever, an attacker's
            # finding). Everything accepted is committed by now; exit without the exit hooks.
            logging.shutdown()
            self.stdout.flush()
            os._exit(0)

    def _policy(self) -> Callable[[PolicyView], object] | None:
        try:
            return smtp_policy_load(settings.ENGAGE_SMTP_POLICY)
        except (ImportError, TypeError) as exc:
            raise CommandError(f"ENGAGE_SMTP_POLICY {settings.ENGAGE_SMTP_POLICY!r} cannot be used: {exc}") from None

    def _tls(self) -> ssl.SSLContext:
        cert: Path | str = settings.ENGAGE_SMTP_TLS_CERT
        key: Path | str = settings.ENGAGE_SMTP_TLS_KEY
        if bool(cert) != bool(key):
            raise CommandError("set both ENGAGE_SMTP_TLS_CERT and ENGAGE_SMTP_TLS_KEY, or neither")
        try:
            if not cert:
                directory = Path(settings.ENGAGE_VAR_DIR) / "smtp-tls"
                cert, key = self_signed_pair(directory, hostname=settings.ENGAGE_SMTP_HOSTNAME)
                self.stderr.write(f"engage: SMTP STARTTLS with the self-signed certificate {cert} (development only)")
            return tls_context(cert, key)
        except TlsSetupError as exc:
            raise CommandError(str(exc)) from None

    async def _serve(self, config: ListenerConfig, host: str, port: int) -> int:
        listener = Listener(config)
        try:
            server = await listener.start(host, port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        bound = ", ".join(str(sock.getsockname()[:2]) for sock in server.sockets)
        self.stdout.write(f"engage: SMTP injection listener on {bound}", ending="\n")
        self.stdout.flush()
        await stop.wait()
        self.stdout.write("engage: SMTP listener shutting down (DATA in flight finishes)")
        await listener.shutdown()
        return listener.policy_calls_running()
