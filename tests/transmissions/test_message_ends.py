"""Every message ends (issue 11, STYLE rule 11): whatever goes wrong for one message fails
that message alone with an event saying why, nothing is claimed forever, and every
transmission reaches a final state. Real PostgreSQL, Redis and an in-process relay."""

from __future__ import annotations

from email.errors import HeaderParseError

import pytest
from django.db import connection

from tests.transmissions.helpers import URL, body, run
from transmissions.models import Message, MessageState, Transmission, TransmissionState

BAD = "bad@example.com"
RECIPIENTS = [{"address": email} for email in ("ok0@example.com", BAD, "ok2@example.com", "ok3@example.com")]
GOOD = {"ok0@example.com", "ok2@example.com", "ok3@example.com"}


def _fault_render(monkeypatch, exc):
    from mailcore.language.content import CompiledContent

    real = CompiledContent.render

    def render(self, data, tracker=None, **kwargs):
        if data.get("email") == BAD:
            raise exc
        return real(self, data, tracker, **kwargs)

    monkeypatch.setattr(CompiledContent, "render", render)


def _fault_mime(monkeypatch, exc):
    from transmissions import generation

    real = generation.build_message

    def build_message(*, headers, **kwargs):
        if any(BAD in str(value) for _name, value in headers):
            raise exc
        return real(headers=headers, **kwargs)

    monkeypatch.setattr(generation, "build_message", build_message)


def _fault_header(monkeypatch, exc):
    from mailcore import mime

    real = mime.header_block

    def header_block(headers, *args, **kwargs):
        headers = list(headers)
        if any(BAD in str(value) for _name, value in headers):
            raise exc
        return real(headers, *args, **kwargs)

    monkeypatch.setattr(mime, "header_block", header_block)


def _fault_relay_envelope(monkeypatch, exc):
    from transmissions.delivery import Relay

    real = Relay.envelope_send

    def envelope_send(self, *, rcpt_to, **kwargs):
        if rcpt_to == BAD:
            raise exc
        return real(self, rcpt_to=rcpt_to, **kwargs)

    monkeypatch.setattr(Relay, "envelope_send", envelope_send)


def _fault_relay_body(monkeypatch, exc):
    from transmissions.delivery import Relay

    real = Relay.body_send

    def body_send(self, data):
        if BAD.encode() in data:
            self._conn.send(data[:40])  # half of it went: the relay must never take it
            raise exc
        return real(self, data)

    monkeypatch.setattr(Relay, "body_send", body_send)


FAULTS = {
    "render": (_fault_render, RecursionError("maximum recursion depth exceeded")),
    "mime build": (_fault_mime, HeaderParseError("expected atom at a start of dot-atom-text but found '\r\nBcc'")),
    "header encoding": (_fault_header, UnicodeEncodeError("ascii", "Jos\u00e9", 3, 4, "ordinal not in range(128)")),
    "relay envelope write": (_fault_relay_envelope, ValueError("bad envelope " + "x" * 2000)),
    "relay body write": (_fault_relay_body, TypeError("memoryview: a bytes-like object is required")),
}


def _by_recipient(events):
    out: dict[str, list[str]] = {}
    for event in events:
        out.setdefault(event["rcpt_to"], []).append(event["type"])
    return {rcpt: sorted(kinds) for rcpt, kinds in out.items()}


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("step", list(FAULTS))
def test_a_fault_at_any_step_fails_that_message_alone_and_the_chunk_goes_on(
    api, relay, events, monkeypatch, step, pipelining
):
    relay.handler.pipelining = pipelining
    install, exc = FAULTS[step]
    install(monkeypatch, exc)
    transmission = run(api, body(recipients=RECIPIENTS))

    # The others, including ok0 whose envelope was pipelined while BAD was generated, went.
    assert sorted(r.rcpt_tos[0] for r in relay.received) == sorted(GOOD)
    assert all(BAD.encode() not in r.data for r in relay.received)
    states = dict(Message.objects.filter(transmission_id=transmission.id).values_list("email", "state"))
    assert states == {**dict.fromkeys(GOOD, "delivered"), BAD: "generation_failed"}
    assert transmission.state == TransmissionState.SUCCESS
    assert (transmission.num_generated, transmission.num_failed_gen) == (3, 1)

    assert _by_recipient(events()) == {**dict.fromkeys(GOOD, ["delivery", "injection"]), BAD: ["generation_failure"]}
    [failure] = [e for e in events() if e["type"] == "generation_failure"]
    assert type(exc).__name__ in failure["reason"]
    assert "Traceback" not in failure["reason"] and len(failure["reason"]) < 400
    assert failure["message_id"] == Message.objects.get(transmission_id=transmission.id, email=BAD).message_id
    assert Message.objects.get(transmission_id=transmission.id, email=BAD).last_error == failure["reason"]


class _WorkerDied(BaseException):
    """Stands for a SIGKILL or an OOM kill: nothing of the task's own handling runs."""


def _age_claims() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transmissions_message SET claimed_at = now() - interval '1 hour' WHERE state = 'sending'"
        )


@pytest.mark.parametrize("recovery", ["beat", "stale claim"])
def test_a_message_whose_worker_dies_each_time_fails_at_the_claim_cap(
    api, relay, events, monkeypatch, settings, recovery
):
    from transmissions import generation, sending
    from transmissions.sending import chunk_send, stale_claims_recover
    from transmissions.services import transmission_start_generation

    settings.ENGAGE_SEND_MAX_CLAIMS = 3
    real = generation.message_generate

    def message_generate(prepared, *, message_id, recipient, **kwargs):
        if recipient["address"]["email"] == BAD:
            raise _WorkerDied
        return real(prepared, message_id=message_id, recipient=recipient, **kwargs)

    monkeypatch.setattr(sending, "message_generate", message_generate)
    tid = int(api.post(URL, body(recipients=RECIPIENTS), format="json").json()["results"]["id"])
    [chunk] = transmission_start_generation(transmission_id=tid)
    deaths = 0
    while True:
        try:
            chunk_send(transmission_id=tid, chunk=chunk, token=f"run{deaths}")
            break
        except _WorkerDied:
            deaths += 1
            assert deaths <= 3, "claimed again past the cap"
            _age_claims()
            if recovery == "beat":
                stale_claims_recover()
    assert deaths == 3

    messages = {m.email: m for m in Message.objects.filter(transmission_id=tid)}
    assert messages[BAD].state == MessageState.GENERATION_FAILED
    reason = "claimed 3 times without finishing: the worker died each time"
    assert messages[BAD].last_error == reason
    # After the first death the others were claimed one at a time: BAD's deaths were its own.
    assert {email: m.claims_lost for email, m in messages.items() if email != BAD} == dict.fromkeys(GOOD, 1)
    assert sorted(r.rcpt_tos[0] for r in relay.received) == sorted(GOOD)
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.state == TransmissionState.SUCCESS
    assert (transmission.num_generated, transmission.num_failed_gen) == (3, 1)
    # Re-claimed messages get their one injection too.
    assert _by_recipient(events()) == {**dict.fromkeys(GOOD, ["delivery", "injection"]), BAD: ["generation_failure"]}
    [failure] = [e for e in events() if e["type"] == "generation_failure"]
    assert failure["reason"] == reason


def test_a_message_given_back_when_the_relay_went_away_gets_one_injection(api, relay, events, monkeypatch):
    from transmissions import sending
    from transmissions.delivery import RelayUnavailable
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    real, calls = sending._hand_off, []

    def hand_off(claim, job):
        calls.append(job.message.message_id)
        if len(calls) == 2:
            raise RelayUnavailable("connection to relay lost: test")
        return real(claim, job)

    monkeypatch.setattr(sending, "_hand_off", hand_off)
    tid = int(api.post(URL, body(recipients=RECIPIENTS), format="json").json()["results"]["id"])
    [chunk] = transmission_start_generation(transmission_id=tid)
    with pytest.raises(RelayUnavailable):
        chunk_send(transmission_id=tid, chunk=chunk, token="first")
    chunk_send(transmission_id=tid, chunk=chunk, token="second")
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUCCESS
    kinds = _by_recipient(e for e in events() if e["type"] != "delay")
    assert kinds == dict.fromkeys([*GOOD, BAD], ["delivery", "injection"])


def test_a_transmission_whose_every_message_failed_is_not_success(api, relay, events, monkeypatch):
    _fault_render(monkeypatch, RuntimeError("nope"))
    transmission = run(api, body(recipients=[{"address": BAD}]))
    assert transmission.state == TransmissionState.FAILED
    assert (transmission.num_rcpts, transmission.num_generated, transmission.num_failed_gen) == (1, 0, 1)
    detail = api.get(f"{URL}/{transmission.id}").json()["results"]["transmission"]
    assert (detail["state"], detail["num_generated"], detail["num_failed_gen"]) == ("Failed", 0, 1)
    assert transmission.generation_end_time is not None


def test_a_transmission_whose_every_message_bounced_is_success(api, relay, events):
    """Bounces are relay answers to generated messages (SparkPost counts them generated)."""
    relay.handler.answers = ["550 5.1.1 no such user"] * 2
    transmission = run(api, body(recipients=RECIPIENTS[:2]))
    assert transmission.state == TransmissionState.SUCCESS
    assert (transmission.num_generated, transmission.num_failed_gen) == (2, 0)


def _stuck(api, recipients) -> int:
    from transmissions.services import transmission_start_generation

    tid = int(api.post(URL, body(recipients=recipients), format="json").json()["results"]["id"])
    transmission_start_generation(transmission_id=tid)  # Generating; its chunk task never runs
    return tid


def test_a_stuck_transmission_can_be_canceled(transactional_db, api, events):
    tid = _stuck(api, RECIPIENTS)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE transmissions_transmission SET generation_start_time = now() - interval '1 hour' WHERE id = %s",
            [tid],
        )
        # One was claimed by a worker that died an hour ago, one was sent before it did.
        cursor.execute(
            "UPDATE transmissions_message SET state = 'sending', claimed_at = now() - interval '1 hour' WHERE email = %s",
            [BAD],
        )
        cursor.execute(
            "UPDATE transmissions_message SET state = 'delivered', finished_at = now() - interval '1 hour' WHERE email = %s",
            ["ok0@example.com"],
        )
    response = api.delete(f"{URL}/{tid}")
    assert response.status_code == 204, response.content
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.state == TransmissionState.CANCELED
    assert (transmission.num_rcpts, transmission.num_generated, transmission.num_failed_gen) == (4, 1, 0)
    states = dict(Message.objects.filter(transmission_id=tid).values_list("email", "state"))
    assert states == {"ok0@example.com": "delivered", BAD: "canceled", "ok2@example.com": "canceled",
                      "ok3@example.com": "canceled"}  # fmt: skip
    bounces = [e for e in events() if e["type"] == "bounce"]
    assert sorted(e["rcpt_to"] for e in bounces) == sorted([BAD, "ok2@example.com", "ok3@example.com"])
    assert {e["reason"] for e in bounces} == {"554 5.7.1 [internal] Transmission cancelled"}
    assert {e["transmission_id"] for e in bounces} == {str(tid)}


def test_a_generating_transmission_that_progresses_is_not_canceled(api, events):
    tid = _stuck(api, RECIPIENTS)  # just started: its worker may be about to claim
    response = api.delete(f"{URL}/{tid}")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "2006"
    assert Transmission.objects.get(pk=tid).state == TransmissionState.GENERATING


def test_a_transmission_whose_content_cannot_be_prepared_fails_each_message_and_ends(api, relay, events, monkeypatch):
    from transmissions import sending

    def prepared_for(transmission):
        raise KeyError("template 'gone' does not exist")

    monkeypatch.setattr(sending, "prepared_for", prepared_for)
    transmission = run(api, body(recipients=RECIPIENTS))
    assert transmission.state == TransmissionState.FAILED
    assert (transmission.num_generated, transmission.num_failed_gen) == (0, 4)
    assert relay.received == []
    failures = [e for e in events() if e["type"] == "generation_failure"]
    assert sorted(e["rcpt_to"] for e in failures) == sorted([BAD, *GOOD])
    assert {e["reason"] for e in failures} == {
        "the content cannot be prepared: KeyError: \"template 'gone' does not exist\""
    }


@pytest.mark.parametrize(
    "recipient",
    [
        {"address": {"email": BAD}, "substitution_data": {"v": "x\r\nBcc: y@example.net"}},
        {"address": {"email": "j\u00f6s\u00e9@example.com", "name": "Jos\u00e9 \u00d6"}},
        {"address": {"email": BAD, "name": "Jos\u00e9 \u00d6", "header_to": "j\u00f6s\u00e9@b\u00fccher.de"}},
    ],
)
def test_the_inputs_of_issue_11_end_their_message_and_nothing_else(api, relay, events, recipient):
    recipients = [RECIPIENTS[0], recipient, *RECIPIENTS[2:]]
    content = {"from": {"email": "news@sender.test", "name": "News"}, "subject": "Hi {{v}}", "text": "t {{v}}"}
    transmission = run(api, body(recipients=recipients, content=content))
    assert transmission.state == TransmissionState.SUCCESS
    assert {r.rcpt_tos[0] for r in relay.received} >= GOOD
    assert not Message.objects.filter(transmission_id=transmission.id, state__in=["queued", "sending"]).exists()
    kinds = _by_recipient(events())
    assert all(kinds[email] == ["delivery", "injection"] for email in GOOD)
    assert len(kinds) == 4
