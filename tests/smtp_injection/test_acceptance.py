"""What acceptance checks and what it costs (issue 13, Deliver 3; SMTP-INJECTION.md §5.5):
only what is cheap to see at the dot, in one statement; the body is compiled once, at
generation, where a message that cannot be used fails with its event."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from smtp_injection.services import (
    Injection,
    SmtpPrincipal,
    smtp_message_accept,
    smtp_message_prepare,
    smtp_messages_store,
)
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


# What JSON escapes, and text JSON parsers have mishandled: the stored source must be the
# source, character for character (the group statement puts it into ``content`` on the
# server, outside the JSON of the rest of the row).
JSON_HOSTILE_BODY = (
    '<p class="a">quote " backslash \\ slash / tab \t {"a": [1]} \\u0041 caf\u00e9 \u2028 \U0001f600</p>\r\n'
)


def test_the_stored_source_is_the_source_to_the_character(db):
    data = message().replace("<p>Hello</p>", JSON_HOSTILE_BODY)
    tid = smtp_message_accept(injection=_injection(data))
    stored = Transmission.objects.get(pk=tid).content
    assert list(stored) == ["email_rfc822"]
    assert stored["email_rfc822"].startswith("Received: ")
    assert stored["email_rfc822"].endswith(data.split("\r\n", 3)[3]), stored["email_rfc822"][-300:]


def test_a_source_stored_through_the_listener_is_the_source_to_the_character(smtp, smtp_key):
    data = message().replace("<p>Hello</p>", JSON_HOSTILE_BODY)
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], data.encode())
    client.quit()
    assert code == 250, reply
    stored = Transmission.objects.get(pk=transmission_id(reply)).content["email_rfc822"]
    assert JSON_HOSTILE_BODY in stored and stored.endswith(data.split("\r\n", 3)[3])


#: A part's Content-Type with 64 Ki semicolons in a quoted parameter (the library reads
#: parameters in quadratic time: a megabyte of them held a worker for hours, an attacker's
#: finding), and 150,000 parts (20 MiB of them took 2 GB and 48 s of a worker: the same).
SEMICOLONS = message().replace(
    "Content-Type: text/html", 'Content-Type: text/html; name="' + "\r\n ".join(";" * 4096 for _ in range(16)) + '"'
)
PARTS = (
    "From: App <app@sender.example.com>\r\nTo: jo@example.com\r\nSubject: Parts\r\n"
    "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + "--a\r\n" * 150_000 + "--a--\r\n"
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(NO_BOUNDARY, "boundary"), (SEMICOLONS, "over 128 parameters"), (PARTS, "more than 1000 parts")],
    ids=["no-boundary", "semicolons", "parts"],
)
def test_a_body_generation_cannot_use_gets_250_then_a_generation_failure_event(smtp, smtp_key, relay, data, reason):
    """The listener stores it as any message (its body is not read at the dot); the worker
    fails it at once with a generation_failure naming why."""
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], data.encode())
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    assert send_all(tid).num_failed_gen == 1
    row = Message.objects.get(transmission_id=tid)
    assert row.state == MessageState.GENERATION_FAILED and reason in row.last_error
    assert relay.received == []


@pytest.mark.parametrize("subject", ["=?utf-8?q?a=00b?=", "=?utf-7?q?+2AA-?="])
def test_a_subject_that_decodes_to_nul_or_a_lone_surrogate_is_delivered_once_and_recorded(
    smtp, smtp_key, relay, subject
):
    """An attacker's finding: the events' ``subject`` held a NUL (or an unpaired surrogate),
    which PostgreSQL's jsonb refuses, so the ``delivered`` mark failed, the message stayed
    ``sending`` and was claimed and relayed again, five times, then failed. It is delivered
    once, its events name the subject with U+FFFD in its place."""
    from tests.transmissions.helpers import outbox_events

    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message().replace("Subject: Your invoice", f"Subject: {subject}"))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    assert send_all(tid).num_generated == 1
    assert Message.objects.get(transmission_id=tid).state == MessageState.DELIVERED
    assert len(relay.received) == 1
    with connection.cursor() as cursor:
        kinds = {event["type"]: event for event in outbox_events(cursor) if event["transmission_id"] == str(tid)}
    assert set(kinds) == {"injection", "delivery"} and "\ufffd" in kinds["delivery"]["subject"]


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

    def enqueue(*, transmission_ids: list[int]) -> None:
        queued.extend(transmission_ids)
        done.set()

    monkeypatch.setattr(smtp_injection.server, "transmissions_generation_enqueue", enqueue)
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250, reply
    assert done.wait(10) and queued == [transmission_id(reply)]


def test_a_whole_task_of_ids_is_queued_at_once_and_the_rest_waits_for_the_window(start_listener, smtp_key, monkeypatch):
    """The first message after a pause goes at once (its worker starts now); then a busy
    listener's worker gets each task's worth of messages (``max_group``) as soon as it is
    there, not a window later; ids short of a task wait for ``enqueue_window`` (or the
    shutdown)."""
    import threading
    import time

    import smtp_injection.server

    tasks: list[list[int]] = []
    queued = threading.Event()

    def enqueue(*, transmission_ids: list[int]) -> None:
        tasks.append(list(transmission_ids))
        queued.set()

    monkeypatch.setattr(smtp_injection.server, "transmissions_generation_enqueue", enqueue)
    listener = start_listener(max_group=2, enqueue_window=600, enqueue_idle=600)
    client = listener.client()
    login(client, smtp_key)
    ids = [transmission_id(inject(client, [f"u{n}@example.com"], message())[1]) for n in range(4)]
    deadline = time.monotonic() + 10
    while len(tasks) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tasks == [ids[:1], ids[1:3]]  # the first alone, then a task's worth: at once, not 600 s later
    listener.shutdown()  # what waits is queued when the listener stops
    assert tasks == [ids[:1], ids[1:3], ids[3:]]


def test_the_end_of_a_burst_is_queued_once_nothing_more_is_stored(start_listener, smtp_key, monkeypatch):
    """Ids short of a task are queued ``enqueue_idle`` seconds after the last store, not a
    whole ``enqueue_window`` later: the last messages of a burst start at once (the burst's
    first went at once)."""
    import time

    import smtp_injection.server

    tasks: list[tuple[float, list[int]]] = []
    monkeypatch.setattr(
        smtp_injection.server, "transmissions_generation_enqueue",
        lambda *, transmission_ids: tasks.append((time.monotonic(), list(transmission_ids))),
    )  # fmt: skip
    listener = start_listener(enqueue_window=600, enqueue_idle=1.0)
    client = listener.client()
    login(client, smtp_key)
    ids = [transmission_id(inject(client, [f"u{n}@example.com"], message())[1]) for n in range(2)]
    stored = time.monotonic()
    deadline = stored + 10
    while len(tasks) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [queued for _at, queued in tasks] == [ids[:1], ids[1:]]
    assert tasks[1][0] - stored >= 0.5, "the burst's last waits for enqueue_idle"


def test_a_subject_with_braces_goes_out_as_written(smtp, smtp_key, relay):
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message().replace("Your invoice", "Your {{x}} invoice"))
    assert code == 250, reply
    send_all(transmission_id(reply))
    assert [received.message["Subject"] for received in relay.received] == ["Your {{x}} invoice"]


def test_a_group_of_messages_is_one_statement_each_row_with_its_own_transmission(db):
    prepared = [
        smtp_message_prepare(injection=_injection(message(), (f"jo{n}@example.com", f"al{n}@example.com")))
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        ids = smtp_messages_store(prepared=prepared)
    assert len(queries) == 1, [query["sql"][:80] for query in queries]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for n, tid in enumerate(ids):
        rows = Message.objects.filter(transmission_id=tid)
        assert sorted(rows.values_list("email", flat=True)) == [f"al{n}@example.com", f"jo{n}@example.com"]
        assert Transmission.objects.get(pk=tid).num_rcpts == 2


def test_concurrent_sessions_are_stored_in_shared_groups_and_each_gets_its_own_id(
    start_listener, smtp_key, monkeypatch
):
    import threading

    import transmissions.services

    original = transmissions.services.transmissions_insert_group_async
    sizes: list[int] = []

    async def slow(*, database, prepared, **kwargs):
        sizes.append(len(prepared))
        await asyncio.sleep(0.3)  # the first group is in flight while the other sessions reach the dot
        return await original(database=database, prepared=prepared, **kwargs)

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", slow)
    listener = start_listener(store_connections=1)
    clients = []
    for _ in range(5):
        client = listener.client()
        login(client, smtp_key)
        clients.append(client)
    replies: list[tuple[int, bytes]] = []
    senders = [
        threading.Thread(target=lambda n=n, client=client: replies.append(inject(client, [f"u{n}@example.com"], message())))
        for n, client in enumerate(clients)
    ]  # fmt: skip
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    assert sorted(code for code, _ in replies) == [250] * 5, replies
    ids = {transmission_id(reply) for _, reply in replies}
    assert len(ids) == 5 and sum(sizes) == 5 and len(sizes) < 5, sizes
    for tid in ids:
        assert Message.objects.filter(transmission_id=tid).count() == 1


def test_a_failed_group_answers_451_to_every_session_in_it(start_listener, smtp_key, monkeypatch):
    import threading

    calls: list[int] = []

    async def broken(*, database, prepared, **kwargs):
        calls.append(len(prepared))
        await asyncio.sleep(0.3)
        raise psycopg.OperationalError("connection to server was lost")

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", broken)
    listener = start_listener(store_connections=1)
    clients = []
    for _ in range(3):
        client = listener.client()
        login(client, smtp_key)
        clients.append(client)
    replies: list[tuple[int, bytes]] = []
    senders = [
        threading.Thread(target=lambda client=client: replies.append(inject(client, ["jo@example.com"], message())))
        for client in clients
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    assert [code for code, _ in replies] == [451] * 3, replies
    assert sum(calls) == 3 and Transmission.objects.count() == 0


def test_a_hung_database_answers_451_after_the_store_timeout_and_the_next_message_is_stored(
    start_listener, smtp_key, monkeypatch
):
    """A statement that never returns (PostgreSQL hung, a lock held) costs its group a
    ``451 4.3.0`` after ``store_timeout`` seconds, not the listener: the connection is
    dropped and the next group is stored on a new one."""
    import transmissions.services

    original = transmissions.services.transmissions_insert_group_async
    used: list[object] = []

    async def hangs_once(*, database, prepared, **kwargs):
        used.append(database)
        if len(used) == 1:
            await asyncio.sleep(3600)
        return await original(database=database, prepared=prepared, **kwargs)

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", hangs_once)
    listener = start_listener(store_timeout=0.5)
    client = listener.client()
    login(client, smtp_key)
    assert inject(client, ["jo@example.com"], message()) == (451, b"4.3.0 Temporary failure, please retry")
    assert Transmission.objects.count() == 0
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250
    assert Transmission.objects.filter(pk=transmission_id(reply)).exists()
    assert used[0] is not used[1] and used[0].closed


def test_after_a_lost_connection_the_next_group_connects_again(smtp, smtp_key, monkeypatch):
    """The store's connection killed under it (a PostgreSQL restart, an idle timeout):
    that group gets 451, the next one is stored on a new connection."""
    import transmissions.services

    original = transmissions.services.transmissions_insert_group_async
    used: list[object] = []

    async def killed_once(*, database, prepared, **kwargs):
        used.append(database)
        if len(used) == 1:
            await database.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return await original(database=database, prepared=prepared, **kwargs)

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", killed_once)
    client = smtp.client()
    login(client, smtp_key)
    assert inject(client, ["jo@example.com"], message())[0] == 451
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250 and Transmission.objects.filter(pk=transmission_id(reply)).exists()
    assert used[0] is not used[1]


def test_the_group_task_starts_and_sends_every_transmission_of_its_group(smtp, smtp_key, relay):
    from transmissions.tasks import transmission_generate_group_task

    client = smtp.client()
    login(client, smtp_key)
    ids = [transmission_id(inject(client, [f"u{n}@example.com"], message())[1]) for n in range(3)]
    assert transmission_generate_group_task.apply(args=(ids,)).get() == 3
    assert sorted(received.rcpt_tos for received in relay.received) == [
        ["u0@example.com"], ["u1@example.com"], ["u2@example.com"]
    ]  # fmt: skip
    assert set(Message.objects.filter(transmission_id__in=ids).values_list("state", flat=True)) == {
        MessageState.DELIVERED
    }
    assert transmission_generate_group_task.apply(args=(ids,)).get() == 0  # twice: nothing sent again
    assert len(relay.received) == 3


def _prepared(count: int) -> list:
    return [
        smtp_message_prepare(injection=Injection(
            principal=SmtpPrincipal(key_id=1, label="app"), listener_hostname="smtp.engage.test",
            client_address="127.0.0.1", helo="client.example.com", tls=True,
            mail_from="bounce@sender.example.com", rcpt_tos=(f"u{n}@example.com",), data=message().encode(),
        ))
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_group_statement_the_server_begins_after_its_deadline_stores_nothing():
    """What keeps a message answered 451 from being stored later: a statement still in a
    frozen server's socket buffer, read once it resumes, is past its deadline and stores
    nothing (tests/drills/test_smtp_drills.py, the frozen store backend). The deadline is in
    the server's clock, from the offset measured at connect."""
    import time
    from datetime import UTC, datetime, timedelta

    from smtp_injection.services import smtp_messages_store_async, smtp_store_connect
    from transmissions.services import GroupDeadlinePassed

    async def store(deadline):
        connected = await smtp_store_connect()
        try:
            # the same machine's clock
            assert abs((connected.server_time(time.monotonic()) - datetime.now(UTC)).total_seconds()) < 5
            return await smtp_messages_store_async(
                database=connected.database, prepared=_prepared(2), deadline=deadline
            )
        finally:
            await connected.database.close()

    now = datetime.now(UTC)
    with pytest.raises(GroupDeadlinePassed):
        asyncio.run(store(now - timedelta(seconds=1)))
    assert Transmission.objects.count() == 0 and Message.objects.count() == 0
    ids = asyncio.run(store(now + timedelta(seconds=30)))
    assert len(ids) == 2 and Transmission.objects.filter(pk__in=ids).count() == 2
    assert Message.objects.filter(transmission_id__in=ids).count() == 2


def test_a_store_connection_ended_while_idle_is_replaced_before_the_next_group(smtp, smtp_key):
    """The server ended the listener's idle connection (``pg_terminate_backend``; a restart or
    an idle timeout alike): the next message is stored on a new one and answered 250, not
    sent on the dead one and answered 451."""
    import time

    client = smtp.client()
    login(client, smtp_key)
    assert inject(client, ["first@example.com"], message())[0] == 250
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE %s AND pid <> pg_backend_pid()",
            ["%WITH ids AS MATERIALIZED%"],
        )
        assert cursor.fetchone()[0] == 1
    time.sleep(0.2)  # the FATAL message and the end of file reach the listener's socket
    code, reply = inject(client, ["second@example.com"], message())
    assert code == 250, reply
    assert Message.objects.filter(email="second@example.com", transmission_id=transmission_id(reply)).exists()
