"""What acceptance checks and what it costs (issue 13, Deliver 3; SMTP-INJECTION.md §5.5):
only what is cheap to see at the dot, in one statement; the body is compiled once, at
generation, where a message that cannot be used fails with its event."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from smtp_injection.services import Injection, SmtpPrincipal, smtp_message_accept
from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from transmissions.models import Message, MessageState, Transmission

NO_BOUNDARY = (
    "From: App <app@sender.example.com>\r\nTo: jo@example.com\r\nSubject: Broken\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary anywhere\r\n"
)


def _injection(data: str, rcpts: tuple[str, ...] = ("jo@example.com",)) -> Injection:
    return Injection(
        principal=SmtpPrincipal(key_id=1, label="app"), listener_hostname="smtp.engage.test",
        client_address="127.0.0.1", helo="client.example.com", tls=True, mail_from="bounce@sender.example.com",
        rcpt_tos=rcpts, data=data.encode(),
    )  # fmt: skip


def test_acceptance_is_one_statement_for_the_transmission_and_its_messages(db):
    with CaptureQueriesContext(connection) as queries:
        tid = smtp_message_accept(injection=_injection(message(), ("jo@example.com", "al@example.com")))
    assert len(queries) == 1, [query["sql"][:80] for query in queries]
    rows = Message.objects.filter(transmission_id=tid)
    assert sorted(rows.values_list("email", flat=True)) == ["al@example.com", "jo@example.com"]
    assert Transmission.objects.get(pk=tid).num_rcpts == 2


def test_a_body_generation_cannot_use_gets_250_then_a_generation_failure_event(smtp, smtp_key, relay):
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], NO_BOUNDARY)
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    assert send_all(tid).num_failed_gen == 1
    row = Message.objects.get(transmission_id=tid)
    assert row.state == MessageState.GENERATION_FAILED and "boundary" in row.last_error
    assert relay.received == []


def test_a_bcc_header_in_the_message_is_554_and_nothing_is_stored(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    before = Transmission.objects.count()
    code, reply = inject(
        client, ["jo@example.com"], message().replace("Subject:", "Bcc: hidden@example.com\r\nSubject:")
    )
    assert code == 554 and b"Bcc" in reply, reply
    assert Transmission.objects.count() == before


def test_the_listener_queues_generation_after_the_250(smtp, smtp_key, monkeypatch):
    import threading

    import smtp_injection.server

    queued: list[int] = []
    done = threading.Event()

    def enqueue(*, transmission_id: int) -> None:
        queued.append(transmission_id)
        done.set()

    monkeypatch.setattr(smtp_injection.server, "transmission_generation_enqueue", enqueue)
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250, reply
    assert done.wait(10) and queued == [transmission_id(reply)]


def test_a_subject_with_braces_goes_out_as_written(smtp, smtp_key, relay):
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message().replace("Your invoice", "Your {{x}} invoice"))
    assert code == 250, reply
    send_all(transmission_id(reply))
    assert [received.message["Subject"] for received in relay.received] == ["Your {{x}} invoice"]
