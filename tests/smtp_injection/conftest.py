"""A real SMTP injection listener on loopback (ports 2600-2699, or the ``first-last`` range
in ``ENGAGE_TEST_SMTP_PORTS`` so parallel checkouts keep apart) with a throwaway self-signed
certificate, the in-process relay of tests/transmissions, and committed data (the listener's
threads use their own database connections, so tests use ``transactional_db``)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import ssl
import threading
from dataclasses import replace

import pytest

from smtp_injection.server import Listener, ListenerConfig
from smtp_injection.tls import self_signed_pair, tls_context


def _port_range() -> range:
    first, _, last = os.environ.get("ENGAGE_TEST_SMTP_PORTS", "2600-2699").partition("-")
    return range(int(first), int(last) + 1)


def _free_port() -> int:
    for port in _port_range():
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_port_range()}")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return self_signed_pair(tmp_path_factory.mktemp("smtp-tls"), hostname="localhost")


class RunningListener:
    """A :class:`Listener` served by its own event loop in a thread."""

    def __init__(self, config: ListenerConfig) -> None:
        self.listener = Listener(config)
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.listener.start("127.0.0.1", self.port))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def shutdown(self) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.listener.shutdown(), self.loop).result(60)

        # As asyncio.run (manage.py smtp_listen) does at exit: the sessions' tasks still
        # pending are cancelled and awaited, or their destruction is logged later, as an
        # error, in whatever test then collects them.
        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    def client(self, *, tls: bool = True) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        client.ehlo("client.example.com")
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the throwaway self-signed certificate
            client.starttls(context=context)
            client.ehlo("client.example.com")
        return client


@pytest.fixture
def config(certificate):
    cert, key = certificate
    return ListenerConfig(
        hostname="smtp.engage.test",
        tls_context=tls_context(cert, key),
        plaintext_auth=False,
        max_message_size=1024 * 1024,
        max_line_length=65536,
        max_rcpts=1000,
        max_connections=50,
        max_connections_per_key=25,
        timeout=60,
        auth_attempts=3,
        shutdown_grace=5,
        threads=4,
    )


@pytest.fixture
def start_listener(config, transactional_db):
    running: list[RunningListener] = []

    def start(**overrides) -> RunningListener:
        listener = RunningListener(replace(config, **overrides))
        running.append(listener)
        return listener

    yield start
    for listener in running:
        listener.shutdown()


@pytest.fixture
def smtp(start_listener):
    return start_listener()


@pytest.fixture
def smtp_key(make_key):
    return make_key("smtp/inject", label="billing app")


@pytest.fixture
def events(settings):
    """A private event stream (tracking hits write there) for the test; deleted afterwards."""
    import uuid

    from tracking.events import events_redis

    name = f"engage:test:smtp-events:{uuid.uuid4().hex}"
    settings.ENGAGE_EVENT_STREAM = name
    yield name
    events_redis().delete(name)
