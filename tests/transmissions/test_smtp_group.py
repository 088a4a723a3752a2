"""The batch path of a group of SMTP-injected transmissions (``transmissions.generate_group``,
``transmissions.sending.group_send``; issue 13, "Benchmark": SMTP-in to relay-out): started,
claimed, checked and finished together, each message still with its own options, events and
fate. Real PostgreSQL and an in-process relay; the task runs in this process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now as timezone_now

from smtp_injection.services import Injection, SmtpPrincipal, smtp_message_prepare, smtp_messages_store
from tests.smtp_injection.helpers import message
from transmissions.models import Message, MessageState, Transmission, TransmissionState

pytestmark = pytest.mark.django_db

BAD = "bad@example.com"
NO_BOUNDARY = (
    "From: App <app@sender.example.com>\r\nTo: jo@example.com\r\nSubject: Broken\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary anywhere\r\n"
)
TRACKED = {"options": {"open_tracking": True, "click_tracking": True}}


def _stored(*messages: tuple[str, str]) -> list[int]:
    """Store ``(recipient, DATA)`` messages as the listener does (one transmission each, one
    group statement); their transmission ids, in order."""
    prepared = [
        smtp_message_prepare(injection=Injection(
            principal=SmtpPrincipal(key_id=1, label="app"), listener_hostname="smtp.engage.test",
            client_address="127.0.0.1", helo="client.example.com", tls=True,
            mail_from="bounce@sender.example.com", rcpt_tos=(rcpt,), data=data.encode(),
        ))
        for rcpt, data in messages
    ]  # fmt: skip
    return smtp_messages_store(prepared=prepared)


def _group(ids: list[int]) -> int:
    from transmissions.tasks import transmission_generate_group_task

    return transmission_generate_group_task(ids)  # in this process, as a worker runs it


def _kinds(events) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for event in events:
        out.setdefault(event["rcpt_to"], []).append(event["type"])
    return {rcpt: sorted(kinds) for rcpt, kinds in out.items()}


def _states(ids: list[int]) -> dict[str, str]:
    return dict(Message.objects.filter(transmission_id__in=ids).values_list("email", "state"))


def _rcpts(relay) -> list[str]:
    return sorted(received.rcpt_tos[0] for received in relay.received)


def test_a_group_costs_the_same_statements_whatever_its_size(relay, events):
    """Start, claim, suppression, consent and finish are one statement each for the group
    (the ``delivered`` marks go pipelined, outside Django's cursor)."""
    _group(_stored(("warm@example.com", message(TRACKED))))  # the connection's prepared statement
    counts = []
    for size in (2, 6):
        ids = _stored(*((f"u{size}-{n}@example.com", message(TRACKED)) for n in range(size)))
        with CaptureQueriesContext(connection) as queries:
            assert _group(ids) == size
        counts.append(len(queries))
        assert set(Transmission.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"Success"}
    assert counts[0] == counts[1], counts
    assert len(relay.received) == 9


def test_a_group_is_claimed_in_as_many_statements_as_it_has_batches_and_no_more(relay, events, settings):
    """A batch that comes back short took every message there was: no further claim runs
    to find nothing. Five messages in batches of two: three claims, each message sent once."""
    settings.ENGAGE_SEND_BATCH_SIZE = 2
    _group(_stored(("warm@example.com", message(TRACKED))))
    ids = _stored(*((f"b{n}@example.com", message(TRACKED)) for n in range(5)))
    with CaptureQueriesContext(connection) as queries:
        assert _group(ids) == 5
    claims = [query for query in queries if "FOR UPDATE SKIP LOCKED" in query["sql"]]
    assert len(claims) == 3, [query["sql"][:80] for query in queries]
    assert _rcpts(relay) == sorted(["warm@example.com", *(f"b{n}@example.com" for n in range(5))])
    assert set(Message.objects.filter(transmission_id__in=ids).values_list("state", flat=True)) == {"delivered"}


def test_each_message_keeps_its_own_campaign_metadata_tags_and_options(relay, events):
    headers = [
        {"campaign_id": "invoices", "metadata": {"customer": "1"}, "tags": ["billing"], **TRACKED},
        {"campaign_id": "welcome", "metadata": {"customer": "2"}, "tags": ["onboarding"],
         "options": {"open_tracking": False, "click_tracking": False}},
        {"campaign_id": "reset", "metadata": {"customer": "3"}, "options": {"transactional": True, **TRACKED["options"]}},
    ]  # fmt: skip
    rcpts = ["a@example.com", "b@example.com", "c@example.com"]
    ids = _stored(*zip(rcpts, (message(header) for header in headers), strict=True))
    assert _group(ids) == 3
    found = {(e["rcpt_to"], e["type"]): e for e in events()}
    for rcpt, header, tid in zip(rcpts, headers, ids, strict=True):
        for kind in ("injection", "delivery"):
            event = found[(rcpt, kind)]
            assert event["campaign_id"] == header["campaign_id"]
            assert event["rcpt_meta"] == header["metadata"]
            assert event["rcpt_tags"] == header.get("tags", [])
            assert event["template_id"] == f"smtp_{tid}" and event["recv_method"] == "esmtp"
            assert event["transactional"] == header["options"].get("transactional", False)
    body = {received.rcpt_tos[0]: received.data for received in relay.received}
    assert b"/f/" in body["a@example.com"] and b"/q/" in body["a@example.com"]
    assert b"/f/" not in body["b@example.com"] and b"https://example.com/invoice" in body["b@example.com"]
    assert b"List-Unsubscribe" in body["a@example.com"] and b"List-Unsubscribe" not in body["c@example.com"]


def test_a_message_that_cannot_be_generated_fails_alone_with_its_event(relay, events, monkeypatch):
    from transmissions import sending

    real = sending.message_generate

    def message_generate(prepared, *, message_id, recipient, **kwargs):
        if recipient["address"]["email"] == BAD:
            raise UnicodeEncodeError("ascii", "Jos\u00e9", 3, 4, "ordinal not in range(128)")
        return real(prepared, message_id=message_id, recipient=recipient, **kwargs)

    monkeypatch.setattr(sending, "message_generate", message_generate)
    ids = _stored(
        ("ok0@example.com", message(TRACKED)), (BAD, message(TRACKED)), ("broken@example.com", NO_BOUNDARY),
        ("ok3@example.com", message(TRACKED)),
    )  # fmt: skip
    _group(ids)
    assert _rcpts(relay) == ["ok0@example.com", "ok3@example.com"]
    assert _states(ids) == {"ok0@example.com": "delivered", BAD: "generation_failed",
                            "broken@example.com": "generation_failed", "ok3@example.com": "delivered"}  # fmt: skip
    kinds = _kinds(events())
    assert kinds == {"ok0@example.com": ["delivery", "injection"], BAD: ["generation_failure"],
                     "broken@example.com": ["generation_failure"], "ok3@example.com": ["delivery", "injection"]}  # fmt: skip
    reasons = {e["rcpt_to"]: e["reason"] for e in events() if e["type"] == "generation_failure"}
    assert reasons[BAD].startswith("message could not be generated: UnicodeEncodeError")
    assert "boundary" in reasons["broken@example.com"]
    states = dict(Transmission.objects.filter(pk__in=ids).values_list("id", "state"))
    assert [states[tid] for tid in ids] == ["Success", "Failed", "Failed", "Success"]


def test_a_suppressed_recipient_bounces_class_25_unsent_and_the_others_go(relay, events):
    from suppression.services import suppression_add

    suppression_add(recipient="gone@example.com", types=["non_transactional"], source="Manually Added",
                    description="test")  # fmt: skip
    ids = _stored(*((rcpt, message(TRACKED)) for rcpt in ("jo@example.com", "gone@example.com", "al@example.com")))
    _group(ids)
    assert _rcpts(relay) == ["al@example.com", "jo@example.com"]
    assert _states(ids) == {"jo@example.com": "delivered", "gone@example.com": "bounced", "al@example.com": "delivered"}
    [bounce] = [e for e in events() if e["type"] == "bounce"]
    assert (bounce["rcpt_to"], bounce["bounce_class"], bounce["error_code"]) == ("gone@example.com", "25", "554")
    assert _kinds(events())["gone@example.com"] == ["bounce", "injection"]


def test_a_recipient_who_denied_consent_gets_an_untracked_copy_in_a_tracked_group(relay, events):
    from consent.services import ConsentWrite, consent_record

    consent_record(writes=[ConsentWrite(recipient="ada@example.com", consent="denied")])
    ids = _stored(*((rcpt, message(TRACKED)) for rcpt in ("jo@example.com", "ada@example.com")))
    _group(ids)
    body = {received.rcpt_tos[0]: received.data for received in relay.received}
    assert b"/f/" in body["jo@example.com"] and b"/q/" in body["jo@example.com"]
    assert b"/f/" not in body["ada@example.com"] and b"/q/" not in body["ada@example.com"]
    assert b'href="https://example.com/invoice"' in body["ada@example.com"]


@pytest.mark.parametrize(
    ("default", "said", "suppressed"),
    [
        ("granted", {"den@example.com": "denied"}, False),
        ("granted", {"den@example.com": "denied"}, True),  # den's own copy leaves the batch unsent
        ("denied", {"jo@example.com": "granted", "arch-jo@example.com": "granted", "arch-den@example.com": "granted"},
         False),
    ],
    ids=["denied", "denied and suppressed", "default denied, never granted"],
)  # fmt: skip
def test_the_archive_copy_of_an_untracked_recipient_is_untracked_in_a_tracked_group(
    relay, events, settings, default, said, suppressed
):
    """SMTP-INJECTION.md §1.6, SPEC A.5: an archive copy replicates its envelope recipient's
    copy, so the group reads that recipient's consent too (even when its own copy is not in
    the batch) and its archive copy gets no pixel, its links as written, no metadata in any URL."""
    from consent.services import ConsentWrite, consent_record
    from suppression.services import suppression_add

    settings.ENGAGE_TRACKING_CONSENT_DEFAULT = default
    consent_record(writes=[ConsentWrite(recipient=rcpt, consent=consent) for rcpt, consent in said.items()])
    if suppressed:
        suppression_add(recipient="den@example.com", types=["non_transactional"], source="Manually Added",
                        description="test")  # fmt: skip
    header = {**TRACKED, "metadata": {"secret": "ARCHMETA"}}
    ids = _stored(
        ("jo@example.com", message({**header, "archive": ["arch-jo@example.com"]})),
        ("den@example.com", message({**header, "archive": ["arch-den@example.com"]})),
    )
    _group(ids)
    body = {received.rcpt_tos[0]: received.data for received in relay.received}
    assert ("den@example.com" in body) is not suppressed
    assert b"/f/" in body["arch-jo@example.com"] and b"/q/" in body["arch-jo@example.com"]
    assert body["arch-jo@example.com"].split(b"\r\n\r\n", 1)[1] == body["jo@example.com"].split(b"\r\n\r\n", 1)[1]
    archive = body["arch-den@example.com"]
    assert b"/f/" not in archive and b"/q/" not in archive and b'href="https://example.com/invoice"' in archive
    assert b"ARCHMETA" not in _tokens_read(archive) and b'"den@' not in _tokens_read(archive)


def _tokens_read(data: bytes) -> bytes:
    """Every Engage URL token in ``data`` as anyone holding it reads it (base64url decoded)."""
    import base64
    import re

    tokens = re.findall(rb"/[fqu]/(?:[^\s\"/<>]+/)*([A-Za-z0-9_-]{16,})", data)
    assert tokens  # at least the List-Unsubscribe URL's
    return b"".join(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)) for token in tokens)


class _WorkerDied(BaseException):
    """Stands for a SIGKILL or an OOM kill: nothing of the task's own handling runs."""


def _age_claims() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transmissions_message SET claimed_at = now() - interval '1 hour' WHERE state = 'sending'"
        )


@pytest.mark.parametrize("recovery", ["beat", "redelivered group"])
def test_a_worker_killed_mid_group_leaves_every_message_ending_once_with_one_injection(
    relay, events, monkeypatch, recovery
):
    from transmissions import sending
    from transmissions.sending import chunk_send, stale_claims_recover
    from transmissions.services import transmission_finish_if_done

    rcpts = [f"ok{n}@example.com" for n in range(5)]
    real, died = sending.message_generate, []

    def message_generate(prepared, *, message_id, recipient, **kwargs):
        if recipient["address"]["email"] == rcpts[2] and not died:
            died.append(message_id)
            raise _WorkerDied
        return real(prepared, message_id=message_id, recipient=recipient, **kwargs)

    monkeypatch.setattr(sending, "message_generate", message_generate)
    ids = _stored(*((rcpt, message(TRACKED)) for rcpt in rcpts))
    with pytest.raises(_WorkerDied):
        _group(ids)
    assert _rcpts(relay) == rcpts[:1]  # the second's envelope was pipelined, its body never went
    _group(ids)  # redelivered at once (acks_late): the claims are not stale yet, nothing is sent twice
    assert _rcpts(relay) == rcpts[:1]
    _age_claims()
    pairs, generating = stale_claims_recover()
    if recovery == "beat":
        for tid, chunk in sorted(pairs):  # what the beat enqueues
            chunk_send(transmission_id=tid, chunk=chunk, token="beat")
        for tid in generating:
            transmission_finish_if_done(transmission_id=tid)
    else:
        _group(ids)  # re-claimed one chunk at a time (claims_lost), by the per-transmission path
    assert _rcpts(relay) == rcpts
    assert set(_states(ids).values()) == {MessageState.DELIVERED}
    assert _kinds(events()) == dict.fromkeys(rcpts, ["delivery", "injection"])
    assert set(Transmission.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"Success"}


def test_a_stuck_transmission_of_a_group_can_be_canceled_and_is_not_sent(relay, events):
    from transmissions.services import transmission_cancel_stuck, transmissions_start_group

    ids = _stored(*((rcpt, message(TRACKED)) for rcpt in ("jo@example.com", "al@example.com")))
    transmissions_start_group(transmission_ids=ids)
    with connection.cursor() as cursor:  # claimed an hour ago by a worker that died
        cursor.execute(
            "UPDATE transmissions_transmission SET generation_start_time = now() - interval '1 hour' WHERE id = %s",
            [ids[0]],
        )
        cursor.execute(
            "UPDATE transmissions_message SET state = 'sending', attempts = 1, claimed_by = 'dead',"
            " claimed_at = now() - interval '1 hour' WHERE transmission_id = %s",
            [ids[0]],
        )
    assert transmission_cancel_stuck(transmission_id=ids[0])
    _group(ids)
    assert _rcpts(relay) == ["al@example.com"]
    assert Transmission.objects.get(pk=ids[0]).state == TransmissionState.CANCELED
    assert _states(ids) == {"jo@example.com": "canceled", "al@example.com": "delivered"}


def test_a_group_with_a_rest_transmission_sends_it_the_per_transmission_way(api, relay, events):
    from tests.transmissions.helpers import URL, body

    rest = int(api.post(URL, body(recipients=[{"address": "rest@example.com"}]), format="json").json()["results"]["id"])
    ids = [*_stored(("smtp@example.com", message(TRACKED))), rest]
    assert _group(ids) == 2
    assert _rcpts(relay) == ["rest@example.com", "smtp@example.com"]
    assert set(Transmission.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"Success"}


def test_a_message_without_date_or_message_id_goes_out_with_them_each_copy_its_own(relay, events):
    """A newcomer's smtplib message had neither: it went out without a Date (RFC 5322 requires
    one) or a Message-ID, which the large mailbox providers refuse. Each copy now gets both
    (RFC 6409 §8.2-8.3); a message that has them keeps its own, once."""
    bare = _stored(("ann@example.com", message({"cc": ["cat@example.com"]})))
    dated = "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <own@app.example>\r\n"
    kept = _stored(
        ("bob@example.com", message().replace("Subject: Your invoice\r\n", "Subject: Your invoice\r\n" + dated))
    )
    _group(bare + kept)
    by_rcpt = {received.rcpt_tos[0]: received.message for received in relay.received}
    ids = {rcpt: Message.objects.get(email=rcpt).message_id for rcpt in ("ann@example.com", "cat@example.com")}
    for rcpt in ("ann@example.com", "cat@example.com"):
        mail = by_rcpt[rcpt]
        assert len(mail.get_all("Date")) == 1 and mail["Date"].datetime is not None
        assert mail.get_all("Message-ID") == [f"<{ids[rcpt]}@sender.example.com>"]  # the MAIL FROM's domain
    assert by_rcpt["bob@example.com"].get_all("Message-ID") == ["<own@app.example>"]
    assert by_rcpt["bob@example.com"].get_all("Date") == ["Tue, 01 Dec 2026 10:00:00 +0000"]


def _row_version(transmission_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM transmissions_transmission WHERE id = %s", [transmission_id])
        return cursor.fetchone()[0]


def test_an_injection_is_stored_generating_and_its_group_start_writes_nothing(relay, events):
    """Stored Generating (no start time nor template to pin), so the group task reads the row
    and leaves it alone until its finish: no lock and no new row version per message."""
    from transmissions.services import transmissions_start_group

    (transmission_id,) = _stored(("jo@example.com", message(TRACKED)))
    stored = Transmission.objects.get(pk=transmission_id)
    assert stored.state == TransmissionState.GENERATING
    assert stored.generation_start_time is not None
    version = _row_version(transmission_id)
    (started,) = transmissions_start_group(transmission_ids=[transmission_id])
    assert started.pk == transmission_id and started.state == TransmissionState.GENERATING
    assert _row_version(transmission_id) == version
    assert _group([transmission_id]) == 1
    assert Transmission.objects.get(pk=transmission_id).state == TransmissionState.SUCCESS


def test_an_injection_stored_submitted_before_the_upgrade_is_started_by_its_group(relay, events):
    (transmission_id,) = _stored(("jo@example.com", message(TRACKED)))
    Transmission.objects.filter(pk=transmission_id).update(
        state=TransmissionState.SUBMITTED, generation_start_time=None
    )
    assert _group([transmission_id]) == 1
    done = Transmission.objects.get(pk=transmission_id)
    assert done.state == TransmissionState.SUCCESS and done.generation_start_time is not None
    assert _rcpts(relay) == ["jo@example.com"]


def test_the_scheduler_starts_an_injection_whose_group_task_was_never_queued(relay, events):
    """The broker down when the listener queued it: a minute on, ``transmissions_due`` has
    it (a message never claimed), and what the task it queues runs sends it once."""
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation, transmissions_due

    lost, sent = _stored(("lost@example.com", message(TRACKED)), ("sent@example.com", message(TRACKED)))
    assert _group([sent]) == 1
    assert lost not in transmissions_due(), "within its first minute a task may still be on its way"
    later = timezone_now() + timedelta(seconds=61)
    due = transmissions_due(now=later)
    assert lost in due and sent not in due
    for chunk in transmission_start_generation(transmission_id=lost):  # transmissions.generate, then its chunks
        chunk_send(transmission_id=lost, chunk=chunk, token="beat")
    assert _rcpts(relay) == ["lost@example.com", "sent@example.com"]
    assert Transmission.objects.get(pk=lost).state == TransmissionState.SUCCESS
    assert lost not in transmissions_due(now=later)


def test_an_injection_waiting_in_a_backlog_is_not_stuck_and_is_sent(api, relay, events):
    """Stored Generating an hour ago and never claimed (a backlog, or its task lost: the
    scheduler queues it again): DELETE is 409 / 2006 as for any transmission being generated,
    nothing is canceled, and its group sends it."""
    from tests.transmissions.helpers import URL
    from transmissions.services import transmission_cancel_stuck

    (transmission_id,) = _stored(("jo@example.com", message(TRACKED)))
    Transmission.objects.filter(pk=transmission_id).update(
        generation_start_time=timezone_now() - timedelta(hours=1), created_at=timezone_now() - timedelta(hours=1)
    )
    assert not transmission_cancel_stuck(transmission_id=transmission_id)
    response = api.delete(f"{URL}/{transmission_id}")
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "2006"
    assert _group([transmission_id]) == 1
    assert _rcpts(relay) == ["jo@example.com"]
    assert Transmission.objects.get(pk=transmission_id).state == TransmissionState.SUCCESS


def test_an_injection_starts_in_the_database_clock_whatever_the_listener_clock_says():
    """The listener's host clock an hour behind: the stored transmission's
    ``generation_start_time`` is the server's, as its ``created_at`` (the scheduler and the
    stuck check compare both with the server's ``now()``)."""
    prepared = smtp_message_prepare(
        injection=Injection(
            principal=SmtpPrincipal(key_id=1, label="app"), listener_hostname="smtp.engage.test",
            client_address="127.0.0.1", helo="client.example.com", tls=True,
            mail_from="bounce@sender.example.com", rcpt_tos=("jo@example.com",), data=message(TRACKED).encode(),
        ),
        now=timezone_now() - timedelta(hours=1),
    )  # fmt: skip
    (transmission_id,) = smtp_messages_store(prepared=[prepared])
    stored = Transmission.objects.get(pk=transmission_id)
    assert stored.state == TransmissionState.GENERATING
    assert stored.generation_start_time == stored.created_at


@pytest.mark.parametrize("value", ["null", "12", '{"a": 1}', '["x"]'])
def test_an_injection_whose_stored_source_is_not_a_string_fails_and_is_not_sent(relay, events, value):
    """A row altered by hand or by a foreign writer: its ``email_rfc822`` is not a JSON string.
    The group's start leaves it in ``content`` as stored, generation refuses it (a
    ``generation_failure``), nothing goes to the relay; a JSON object was sent as its text."""
    (tid,) = _stored(("jo@example.com", message(TRACKED)))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transmissions_transmission SET content = jsonb_build_object('email_rfc822', %s::jsonb)"
            " WHERE id = %s",
            [value, tid],
        )
    _group([tid])
    assert _rcpts(relay) == []
    assert list(Message.objects.filter(transmission_id=tid).values_list("state", flat=True)) == ["generation_failed"]


def test_the_scheduler_queues_a_waiting_injection_again_only_once_no_task_waits(monkeypatch):
    """Never claimed a minute after it was stored: while tasks wait in the queue it waits
    behind them (queueing it again each tick queued a task per waiting injection, every five
    seconds), queued again once every REQUEUE_PERIOD of its wait; once the queue is empty its
    task was lost, and it goes again at once, in a group task."""
    from celery import current_app
    from django.core.cache import cache

    from transmissions import tasks

    cache.delete(tasks._LAST_SWEEP)
    waiting, period_over = _stored(("jo@example.com", message(TRACKED)), ("al@example.com", message(TRACKED)))
    Transmission.objects.filter(pk=waiting).update(created_at=timezone_now() - timedelta(minutes=2))
    Transmission.objects.filter(pk=period_over).update(
        created_at=timezone_now() - timedelta(seconds=tasks.REQUEUE_PERIOD + 1)
    )
    queued: list[list[int]] = []
    monkeypatch.setattr(
        tasks, "transmissions_generation_enqueue", lambda *, transmission_ids: queued.append(transmission_ids)
    )
    monkeypatch.setattr(tasks.transmission_generate_task, "delay", lambda tid: queued.append([tid]))
    queue = current_app.conf.task_default_queue
    with current_app.connection_for_write() as broker:
        broker.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        broker.default_channel.queue_purge(queue)
        current_app.send_task("tests.a_task_that_waits", args=(), connection=broker)
        try:
            tasks.transmissions_start_due_task()
            assert queued == [[period_over]], "a task waits: the injection's may be one of those"
        finally:
            broker.default_channel.queue_purge(queue)
    queued.clear()
    tasks.transmissions_start_due_task()
    assert [sorted(group) for group in queued] == [sorted([waiting, period_over])]


def test_the_recovery_leaves_an_injection_waiting_for_its_group_task_and_finishes_the_done_ones(
    relay, events, monkeypatch
):
    """An injection stored an hour ago and never claimed waits for its group task (or the
    scheduler's start_due makes up a lost one): the stale-claim recovery queued a chunk task
    for each such injection on every tick of a backlog. It queues none; a transmission whose
    messages all ended is finished (its state Success) in the same pass."""
    from transmissions import tasks

    waiting, done = _stored(("jo@example.com", message(TRACKED)), ("al@example.com", message(TRACKED)))
    assert _group([done]) == 1
    Transmission.objects.filter(pk=done).update(state=TransmissionState.GENERATING)  # its finish not run yet
    Transmission.objects.filter(pk__in=[waiting, done]).update(
        created_at=timezone_now() - timedelta(hours=1), generation_start_time=timezone_now() - timedelta(hours=1)
    )
    chunks: list[tuple[int, int]] = []
    monkeypatch.setattr(tasks.chunk_send_task, "delay", lambda tid, chunk: chunks.append((tid, chunk)))
    tasks.transmissions_recover_stale_task()
    assert chunks == []
    assert Transmission.objects.get(pk=done).state == TransmissionState.SUCCESS
    assert Transmission.objects.get(pk=waiting).state == TransmissionState.GENERATING


def _sweeps(monkeypatch, sweeps: list[tuple[float, bool]]) -> tuple[int, list[list[int]]]:
    """One injection stored and never claimed, then the scheduler's sweeps (``start_due``),
    one per ``(seconds it has waited, whether the generation queue is empty)``; returns its
    id and the groups of ids the sweeps queued."""
    from django.core.cache import cache

    from transmissions import tasks

    cache.delete(tasks._LAST_SWEEP)
    (waiting,) = _stored(("jo@example.com", message(TRACKED)))
    stored = Transmission.objects.get(pk=waiting).created_at
    queued: list[list[int]] = []
    monkeypatch.setattr(
        tasks, "transmissions_generation_enqueue", lambda *, transmission_ids: queued.append(transmission_ids) or True
    )
    for age, empty in sweeps:
        monkeypatch.setattr(tasks, "database_now", lambda age=age: stored + timedelta(seconds=age))
        monkeypatch.setattr(tasks, "generation_queue_empty", lambda empty=empty: empty)
        tasks.transmissions_start_due_task()
    return waiting, queued


def test_a_waiting_injection_goes_again_when_its_wait_crosses_the_period_between_two_late_sweeps(monkeypatch):
    """While tasks wait, an injection goes again when its wait passed a multiple of
    REQUEUE_PERIOD since the previous sweep, however late the sweeps run: a window of one
    tick at the multiple was jumped over by a sweep at 598 s and the next at 605.5 s (their
    queue waits 2.5 s apart), and the injection was never queued again."""
    backlog = [(age, False) for age in (590.0, 598.0, 605.5, 611.0, 1195.0, 1203.0)]
    waiting, queued = _sweeps(monkeypatch, backlog)
    assert queued == [[waiting], [waiting]]  # at 605.5 s and at 1,203 s: once a period


def test_a_sweep_of_an_empty_queue_counts_as_the_previous_sweep(monkeypatch):
    """Queued again by a sweep that found the queue empty, an injection is not queued once
    more by the next sweep of a backlog: that one counts from the empty queue's sweep, not
    from the last backlog sweep before it (which put a multiple of REQUEUE_PERIOD between)."""
    waiting, queued = _sweeps(monkeypatch, [(10.0, False), (605.0, True), (700.0, False)])
    assert queued == [[waiting]]  # by the empty queue's sweep alone


def test_the_sweep_stops_at_the_first_group_the_broker_does_not_take(monkeypatch):
    """A broker down: each group's publish waits for its timeout; the sweep stops at the first
    refusal (the next tick tries again) rather than hold a worker for every group."""
    from django.core.cache import cache

    from transmissions import tasks

    cache.delete(tasks._LAST_SWEEP)
    monkeypatch.setattr(tasks, "UNQUEUED_GROUP", 1)
    ids = _stored(("jo@example.com", message(TRACKED)), ("al@example.com", message(TRACKED)))
    Transmission.objects.filter(pk__in=ids).update(created_at=timezone_now() - timedelta(minutes=2))
    tried: list[list[int]] = []
    monkeypatch.setattr(
        tasks, "transmissions_generation_enqueue", lambda *, transmission_ids: tried.append(transmission_ids) and False
    )
    monkeypatch.setattr(tasks, "generation_queue_empty", lambda: True)
    tasks.transmissions_start_due_task()
    assert len(tried) == 1
