"""The hand-off contract of transmissions/sending.py and the SMTP client of delivery.py,
against real PostgreSQL, Redis and an in-process aiosmtpd relay."""

from __future__ import annotations

import smtplib
import time

import psycopg
import pytest

from tests.transmissions.helpers import body, run
from tests.transmissions.relay import Relay
from transmissions.models import Message, TransmissionState


def _watcher():
    """A second PostgreSQL session: what another process (a restarted worker) would see."""
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(
        host=s.get("HOST") or "127.0.0.1", port=s.get("PORT") or 5432, dbname=s["NAME"], user=s.get("USER") or None,
        password=s.get("PASSWORD") or None, autocommit=True,
    )  # fmt: skip


def test_every_handed_off_message_is_sent_with_its_events_for_other_sessions_before_the_next_hand_off(
    transactional_db, api, relay, events, monkeypatch
):
    """The ``sent`` UPDATE leaves the worker right after the relay's 2xx, not at a later read
    back: a restarted worker would never resend a message the relay already took, except
    inside that one step. Its ``injection`` and ``delivery`` events are written by the same
    statement, so no other session ever sees the state without them."""
    from tests.transmissions.helpers import outbox_events
    from transmissions import sending

    recipients = [{"address": f"g{i}@example.com"} for i in range(35)]
    real_relay, checked = sending.relay, []
    with _watcher() as watcher:

        class Watching:
            def __getattr__(self, name):
                return getattr(real_relay(), name)

            def envelope_send(self, **kwargs):
                handed = {r.rcpt_tos[0] for r in relay.received}
                deadline = time.monotonic() + 5
                while True:
                    rows = watcher.execute(
                        "SELECT email FROM transmissions_message WHERE state = 'delivered'"
                    ).fetchall()
                    sent = {row[0] for row in rows}
                    if handed <= sent:
                        break
                    assert time.monotonic() < deadline, f"not recorded before the next hand-off: {handed - sent}"
                    time.sleep(0.002)
                stored = outbox_events(watcher.cursor())
                sent_now = {row[0] for row in watcher.execute(
                    "SELECT email FROM transmissions_message WHERE state = 'delivered'").fetchall()}  # fmt: skip
                assert {e["rcpt_to"] for e in stored if e["type"] == "delivery"} == sent_now
                assert {e["rcpt_to"] for e in stored if e["type"] == "injection"} == sent_now
                checked.append(len(sent_now))
                return real_relay().envelope_send(**kwargs)

        monkeypatch.setattr(sending, "relay", Watching)
        transmission = run(api, body(recipients=recipients))
    assert len(checked) == len(recipients)
    assert transmission.state == TransmissionState.SUCCESS
    assert Message.objects.filter(transmission_id=transmission.id, state="delivered").count() == len(recipients)
    assert sorted(e["type"] for e in events()) == ["delivery"] * len(recipients) + ["injection"] * len(recipients)


def test_a_refusal_after_the_body_is_recorded_and_the_next_message_goes(api, relay, events):
    relay.handler.answers = ["250 OK", "550 5.1.1 no such user", "451 4.3.0 busy"]
    recipients = [{"address": f"a{i}@example.com"} for i in range(4)]
    transmission = run(api, body(recipients=recipients))
    states = dict(Message.objects.filter(transmission_id=transmission.id).values_list("email", "state"))
    assert states == {"a0@example.com": "delivered", "a1@example.com": "bounced", "a2@example.com": "delayed",
                      "a3@example.com": "delivered"}  # fmt: skip
    kinds = sorted((e["rcpt_to"], e["type"]) for e in events() if e["type"] != "injection")
    assert kinds == [("a0@example.com", "delivery"), ("a1@example.com", "bounce"), ("a2@example.com", "delay"),
                     ("a3@example.com", "delivery")]  # fmt: skip


class _Counting:
    """Counts the client's writes to the relay (one per round trip it starts)."""

    def __init__(self, monkeypatch):
        self.writes = 0
        real = smtplib.SMTP.send

        def send(conn, data):
            self.writes += 1
            return real(conn, data)

        monkeypatch.setattr(smtplib.SMTP, "send", send)


@pytest.mark.parametrize("pipelining, writes", [(True, 2), (False, 4)])
def test_the_envelope_is_one_round_trip_when_the_relay_offers_pipelining(monkeypatch, pipelining, writes):
    from transmissions.delivery import Relay as Client

    server = Relay().start()
    server.handler.pipelining = pipelining
    client = Client(server.url)
    try:
        client.send(mail_from="a@sender.test", rcpt_to="warm@example.com", data=b"Subject: warm\n\nx\n")
        counting = _Counting(monkeypatch)
        for i in range(3):
            result = client.send(mail_from="a@sender.test", rcpt_to=f"r{i}@example.com", data=b"Subject: hi\n\nbody\n")
            assert result.outcome == "delivered"
        assert counting.writes == 3 * writes
    finally:
        client.close()
        server.stop()
    assert [r.rcpt_tos for r in server.received] == [["warm@example.com"], ["r0@example.com"], ["r1@example.com"],
                                                     ["r2@example.com"]]  # fmt: skip
    assert server.received[1].data.replace(b"\r\n", b"\n") == b"Subject: hi\n\nbody\n"


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(
    "mail_answer, rcpt_answer, outcome, code",
    [(None, "550 5.1.1 unknown user", "bounced", 550), (None, "452 4.2.2 mailbox full", "delayed", 452),
     ("451 4.7.1 slow down", None, "delayed", 451), ("553 5.7.1 sender refused", None, "bounced", 553)],
)  # fmt: skip
def test_a_refused_envelope_is_classified_and_the_connection_stays_usable(pipelining, mail_answer, rcpt_answer,
                                                                           outcome, code):  # fmt: skip
    from transmissions.delivery import Relay as Client

    server = Relay().start()
    server.handler.pipelining = pipelining
    if rcpt_answer:
        server.handler.refuse["no@example.com"] = rcpt_answer
    if mail_answer:
        server.handler.refuse_mail = mail_answer
    client = Client(server.url)
    try:
        result = client.send(mail_from="a@sender.test", rcpt_to="no@example.com", data=b"Subject: x\n\nx\n")
        assert (result.outcome, result.code) == (outcome, code)
        server.handler.refuse_mail = None
        after = client.send(mail_from="a@sender.test", rcpt_to="yes@example.com", data=b"Subject: y\n\ny\n")
        assert after.outcome == "delivered"
    finally:
        client.close()
        server.stop()
    assert [r.rcpt_tos for r in server.received] == [["yes@example.com"]]


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("stopped_after", ["envelope_send", "envelope_result", "body_send"])
def test_a_transaction_left_unfinished_never_leaks_into_the_next_one(pipelining, stopped_after):
    """An error between the steps (say, the database while the next message is generated)
    must not leave the connection inside DATA, where the next envelope would be body text."""
    from transmissions.delivery import Relay as Client

    server = Relay().start()
    server.handler.pipelining = pipelining
    client = Client(server.url)
    try:
        client.envelope_send(mail_from="a@sender.test", rcpt_to="first@example.com")
        if stopped_after != "envelope_send":
            assert client.envelope_result() is None
        if stopped_after == "body_send":  # the end of DATA went: the relay owns that one
            client.body_send(b"Subject: 1\n\none\n")
        result = client.send(mail_from="a@sender.test", rcpt_to="second@example.com", data=b"Subject: 2\n\ntwo\n")
        assert result.outcome == "delivered"
    finally:
        client.close()
        server.stop()
    first = [(["first@example.com"], b"Subject: 1\n\none\n")] if stopped_after == "body_send" else []
    assert [(r.rcpt_tos, r.data.replace(b"\r\n", b"\n")) for r in server.received] == [
        *first,
        (["second@example.com"], b"Subject: 2\n\ntwo\n"),
    ]
