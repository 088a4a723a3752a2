"""A broker that accepts connections and never answers (a frozen Redis, a proxy in front of a
dead one): a publish gives up after ``ENGAGE_BROKER_TIMEOUT`` (about four times it at most),
the SMTP listener still answers 250 for what it stored, and its shutdown ends: the generation
it could not queue is stored, and the scheduler starts it (``transmissions_due``).

Before the broker had socket timeouts, ``send_task`` waited for the answer forever, and with it
the listener's enqueue thread, which ``GroupStore.close`` waited for with no limit: SIGTERM never
ended ``manage.py smtp_listen``."""

from __future__ import annotations

import logging
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app
from django.utils import timezone
from kombu.exceptions import OperationalError

import smtp_injection.server
from tests.helpers import HungServer, database_url, fails_if_hung
from tests.smtp_injection.helpers import inject, login, message, transmission_id
from transmissions.models import Transmission
from transmissions.services import transmission_generation_enqueue, transmissions_due

ROOT = Path(__file__).resolve().parents[2]


def _broker_use(url: str) -> None:
    """Point this process's Celery producer at ``url``, dropping the pooled connections."""
    from kombu import pools

    pools.reset()
    current_app._pool = None
    current_app.amqp._producer_pool = None
    current_app.conf.broker_write_url = url
    current_app.conf.broker_read_url = url


@pytest.fixture
def hung_broker():
    """This process's Celery producer pointed at a :class:`HungServer`; afterwards the broker's
    connections are closed (a publish still waiting gets an error and ends) and the producer
    goes back to the configured broker."""
    saved = current_app.conf.broker_write_url
    broker = HungServer()
    _broker_use(broker.url)
    yield broker
    broker.close()
    _broker_use(saved)


def _started_within_a_minute(tid: int) -> bool:
    """Whether the scheduler starts transmission ``tid`` a minute after it was stored."""
    return tid in transmissions_due(now=timezone.now() + timedelta(seconds=61))


@pytest.mark.slow
def test_send_task_to_a_broker_that_never_answers_raises_instead_of_waiting(hung_broker):
    with fails_if_hung(15), pytest.raises(OperationalError):
        current_app.send_task("transmissions.generate", args=(1,))
    assert hung_broker.connections  # it reached the broker, which never answered


@pytest.mark.slow
def test_a_web_enqueue_to_a_broker_that_never_answers_returns_and_says_so(hung_broker, caplog):
    """``transaction.on_commit``'s enqueue in a web request: the request is answered, the
    transmission stays stored for the scheduler, and the log says why it was not queued."""
    with caplog.at_level(logging.WARNING, logger="transmissions.services"), fails_if_hung(15):
        transmission_generation_enqueue(transmission_id=1)
    (record,) = [r for r in caplog.records if r.name == "transmissions.services"]
    assert "transmission 1 stored; its start was not queued (Timeout reading from socket)" in record.getMessage()


@pytest.mark.slow
def test_with_the_broker_hung_a_message_is_250_and_stored_and_the_listener_stops(smtp, smtp_key, hung_broker):
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250, reply
    tid = transmission_id(reply)
    assert Transmission.objects.filter(pk=tid).exists()
    client.quit()
    with fails_if_hung(10):
        while not hung_broker.connections:  # the enqueue thread is publishing to it
            time.sleep(0.05)
    with fails_if_hung(15):
        smtp.shutdown()
    assert _started_within_a_minute(tid)


def test_shutdown_waits_for_a_stuck_enqueue_only_its_grace_and_names_what_it_left(
    start_listener, smtp_key, monkeypatch, caplog
):
    """A publish that never ends (whatever the broker client does): the listener stops after
    ``ENQUEUE_GRACE`` seconds, and the ids it could not queue are logged, left to the scheduler."""
    entered, release = threading.Event(), threading.Event()

    def stuck(*, transmission_ids: list[int]) -> None:
        entered.set()
        release.wait(60)

    monkeypatch.setattr(smtp_injection.server, "transmissions_generation_enqueue", stuck)
    monkeypatch.setattr(smtp_injection.server, "ENQUEUE_GRACE", 0.5)
    listener = start_listener(max_group=1)
    client = listener.client()
    login(client, smtp_key)
    first = transmission_id(inject(client, ["jo@example.com"], message())[1])
    assert entered.wait(10)
    second = transmission_id(inject(client, ["al@example.com"], message())[1])  # waits behind the first
    client.quit()
    try:
        with caplog.at_level(logging.WARNING, logger="smtp_injection.server"), fails_if_hung(15):
            listener.shutdown()
    finally:
        release.set()
    (record,) = [r for r in caplog.records if "the scheduler will start them" in r.getMessage()]
    assert f"transmissions {[first, second]} are stored and not queued" in record.getMessage()
    assert _started_within_a_minute(first) and _started_within_a_minute(second)


class _SmtpListen:
    """``manage.py smtp_listen`` in a process of its own on a free port, its output in ``log``."""

    def __init__(self, tmp_path, **env: str) -> None:
        from django.db import connection

        self.log = tmp_path / "smtp_listen.log"
        environ = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "ENGAGE_VAR_DIR": str(tmp_path / "var"),
            "ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH": "true",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "smtp_listen", "--host", "127.0.0.1", "--port", "0"],
                cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        with fails_if_hung(60):
            while not (bound := re.search(r"listener on \('127\.0\.0\.1', (\d+)\)", self.log.read_text())):
                assert self.process.poll() is None, self.log.read_text()
                time.sleep(0.1)
        self.port = int(bound.group(1))

    def inject(self, smtp_key: str) -> tuple[int, str]:
        """One message, in a session of its own (STARTTLS, AUTH): the final reply."""
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        client.ehlo("client.example.com")
        login(client, smtp_key)
        code, reply = inject(client, ["jo@example.com"], message())
        client.quit()
        return code, reply

    def sigterm_ends_it(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(15) == 0, self.log.read_text()
        except subprocess.TimeoutExpired:
            pytest.fail("smtp_listen still running 15 s after SIGTERM:\n" + self.log.read_text())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.mark.slow
def test_sigterm_ends_smtp_listen_while_the_broker_never_answers(transactional_db, smtp_key, hung_broker, tmp_path):
    """``manage.py smtp_listen`` as in production, its broker hung: a message is answered 250
    and stored, and SIGTERM ends the process (at ebdf75a it never did)."""
    listen = _SmtpListen(tmp_path, REDIS_URL=hung_broker.url)
    try:
        code, reply = listen.inject(smtp_key)
        assert code == 250, reply
        tid = transmission_id(reply)
        with fails_if_hung(10):
            while not hung_broker.connections:  # its enqueue thread is publishing
                time.sleep(0.05)
        listen.sigterm_ends_it()
    finally:
        listen.kill()
    assert Transmission.objects.filter(pk=tid).exists()
    assert _started_within_a_minute(tid)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["never_returns", "never_returns_via_pool"])
def test_sigterm_ends_smtp_listen_while_a_policy_call_never_returns(transactional_db, smtp_key, tmp_path, policy):
    """A policy stuck for good: its message is answered 451 at the policy's time limit, and
    SIGTERM still ends the process (the interpreter used to wait for the policy's thread), also
    when the policy waits on another pool's worker, which the interpreter joins at exit."""
    listen = _SmtpListen(
        tmp_path, ENGAGE_SMTP_POLICY=f"tests.smtp_injection.policies.{policy}", ENGAGE_SMTP_POLICY_TIMEOUT="1"
    )
    try:
        code, reply = listen.inject(smtp_key)
        assert code == 451, reply
        listen.sigterm_ends_it()
    finally:
        listen.kill()
    assert "policy call(s) still running after the shutdown" in listen.log.read_text()
