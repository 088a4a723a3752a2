"""Hostile and international input in headers and addresses (issue 10): what the API accepts,
what the relay receives, parsed the way a mail reader parses it (``email.policy.default``).
Real PostgreSQL, Redis and an in-process SMTP relay."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error
from tests.transmissions.helpers import CONTENT, addresses, body, lines_fit, no_defects, run
from tests.transmissions.relay import Relay
from transmissions.models import Message, MessageState

URL = "/api/v1/transmissions"
#: What Engage writes on a non-transactional inline text+html message, in order.
OWN = ["From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version",
       "Content-Type"]  # fmt: skip


def names(message) -> list[str]:
    return list(message.keys())


# --- header injection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, shown",
    [
        (
            "x\nReply-To : attacker@evil.example\nX-Injected : yes",
            "x Reply-To : attacker@evil.example X-Injected : yes",
        ),
        ("Bob\n\nTEXT", "Bob  TEXT"),
        ("Bob\rTEXT", "Bob TEXT"),
        ("Bob\r\nBcc: victim@example.com", "Bob Bcc: victim@example.com"),
        ("tab\tescape\x1bc1\x85ls\u2028end", "tab escape c1 ls end"),  # NUL: refused at the API, see test_headers
    ],
)
def test_a_line_break_in_substitution_data_never_adds_a_header_or_ends_the_block(api, relay, value, shown):
    content = {**CONTENT, "subject": "Hi {{v}}"}
    run(api, body(content=content, recipients=[{"address": "jo@example.com", "substitution_data": {"v": value}}]))
    received = relay.received[0]
    message = received.message
    assert names(message) == OWN
    assert message["Subject"] == f"Hi {shown}"
    assert message["Reply-To"] is None and message["X-Injected"] is None and message["Bcc"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert received.rcpt_tos == ["jo@example.com"]
    no_defects(message)


def test_a_recipient_name_with_a_line_break_stays_in_the_to_header(api, relay):
    run(api, body(recipients=[{"address": {"email": "ann@example.com", "name": "Ann\nLee"}}]))
    message = relay.received[0].message
    assert names(message) == OWN
    assert addresses(message, "To") == [("Ann Lee", "ann@example.com")]
    no_defects(message)


def test_a_name_with_a_lone_cr_in_a_string_address_stays_in_the_to_header(api, relay):
    run(api, body(recipients=[{"address": "Ann\rLee <ann@example.com>"}]))
    message = relay.received[0].message
    assert names(message) == OWN
    assert addresses(message, "To") == [("Ann Lee", "ann@example.com")]


def test_a_subject_without_whitespace_is_split_into_encoded_words_under_998_octets(api, relay):
    run(api, body(content={**CONTENT, "subject": "{{v}}"}, substitution_data={"v": "x" * 5000, "name": "n"}))
    received = relay.received[0]
    lines_fit(received.data)
    assert received.message["Subject"] == "x" * 5000
    no_defects(received.message)


# --- address headers -----------------------------------------------------------------------------


def test_a_non_ascii_reply_to_encodes_only_the_display_name(api, relay):
    run(api, body(content={**CONTENT, "reply_to": "Réply Désk <r@example.com>"}))
    received = relay.received[0]
    assert b"<r@example.com>" in received.data  # a reader that decodes nothing still finds it
    assert addresses(received.message, "Reply-To") == [("Réply Désk", "r@example.com")]
    no_defects(received.message)


def test_header_to_and_a_cc_with_non_ascii_names_and_domains_stay_readable(api, relay):
    content = {**CONTENT, "headers": {"CC": "Ünïcode Näme <cc@bücher.de>, plain@example.com"}}
    recipients = [{"address": {"email": "p@example.com", "name": "Zoë Ünal", "header_to": "list@bücher.de"}}]
    run(api, body(content=content, recipients=recipients))
    received = relay.received[0]
    message = received.message
    assert received.rcpt_tos == ["p@example.com"]
    assert addresses(message, "To") == [("Zoë Ünal", "list@xn--bcher-kva.de")]
    assert addresses(message, "CC") == [("Ünïcode Näme", "cc@xn--bcher-kva.de"), ("", "plain@example.com")]
    assert b"<list@xn--bcher-kva.de>" in received.data and b"<cc@xn--bcher-kva.de>" in received.data
    assert received.data.isascii()
    no_defects(message)


def test_an_idn_recipient_domain_goes_as_an_a_label_in_rcpt_to_and_to(api, relay, events):
    run(api, body(recipients=[{"address": {"email": "a@bücher.de", "name": "A"}}]))
    received = relay.received[0]
    assert received.rcpt_tos == ["a@xn--bcher-kva.de"]
    assert addresses(received.message, "To") == [("A", "a@xn--bcher-kva.de")]
    assert {e["raw_rcpt_to"] for e in events()} == {"a@bücher.de"}  # events keep the address as given


def test_a_non_ascii_local_part_is_sent_with_smtputf8(api, relay):
    run(api, body(recipients=[{"address": {"email": "zoë-x@example.com", "name": "Zoe"}}]))
    received = relay.received[0]
    assert received.rcpt_tos == ["zoë-x@example.com"]
    assert "SMTPUTF8" in received.mail_options
    assert "To: Zoe <zoë-x@example.com>".encode() in received.data


@pytest.fixture
def ascii_relay(settings):
    """A relay that does not offer SMTPUTF8."""
    from transmissions.delivery import relay_reset

    server = Relay(smtputf8=False).start()
    settings.ENGAGE_RELAY_URL = server.url
    relay_reset()
    yield server
    relay_reset()
    server.stop()


def test_without_smtputf8_a_non_ascii_local_part_bounces_alone(api, ascii_relay, events):
    recipients = [{"address": {"email": "zoë-x@example.com", "name": "Zoe"}}, {"address": "ok@example.com"},
                  {"address": "also@bücher.de"}]  # fmt: skip
    transmission = run(api, body(recipients=recipients))
    assert sorted(r.rcpt_tos[0] for r in ascii_relay.received) == ["also@xn--bcher-kva.de", "ok@example.com"]
    states = dict(Message.objects.filter(transmission=transmission).values_list("email", "state"))
    assert states["zoë-x@example.com"] == MessageState.BOUNCED
    (bounce,) = [e for e in events() if e["type"] == "bounce"]
    assert bounce["raw_rcpt_to"] == "zoë-x@example.com"
    assert bounce["error_code"] == "553" and "SMTPUTF8" in bounce["reason"]


def test_a_rendered_from_that_is_not_an_address_fails_that_message_alone(api, relay, events):
    content = {**CONTENT, "from": "News <{{sender}}>"}
    recipients = [{"address": "a@example.com", "substitution_data": {"sender": "not an address"}},
                  {"address": "b@example.com", "substitution_data": {"sender": "news@sender.test"}}]  # fmt: skip
    transmission = run(api, body(content=content, recipients=recipients))
    assert [r.rcpt_tos for r in relay.received] == [["b@example.com"]]
    assert transmission.num_failed_gen == 1
    (failure,) = [e for e in events() if e["type"] == "generation_failure"]
    assert failure["rcpt_to"] == "a@example.com" and "not an email address" in failure["reason"]


# --- List-Unsubscribe ----------------------------------------------------------------------------


def test_a_callers_list_unsubscribe_headers_replace_engages(api, relay):
    headers = {"List-Unsubscribe": "<https://sender.test/u/1>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    run(api, body(content={**CONTENT, "headers": headers}))
    message = relay.received[0].message
    assert message.get_all("List-Unsubscribe") == ["<https://sender.test/u/1>"]
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]


def test_a_callers_list_unsubscribe_alone_drops_engages_one_click_post(api, relay):
    run(api, body(content={**CONTENT, "headers": {"list-unsubscribe": "<mailto:u@sender.test>"}}))
    message = relay.received[0].message
    assert message.get_all("List-Unsubscribe") == ["<mailto:u@sender.test>"]
    assert message.get_all("List-Unsubscribe-Post") is None  # RFC 8058 needs an HTTPS URI of ours


# --- validation at the API -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, field",
    [
        ({**CONTENT, "from": {"email": "not-an-address"}}, "content.from.email"),
        ({**CONTENT, "from": "News <news@localhost>"}, "content.from.email"),
        ({**CONTENT, "reply_to": "Réply Désk <r@>"}, "content.reply_to"),
        ({**CONTENT, "headers": {"Cc": "someone"}}, "content.headers.Cc"),
    ],
)
def test_an_address_field_that_is_not_an_address_is_422(api, content, field):
    error = assert_error(api.post(URL, body(content=content), format="json"), 422, "1300")
    assert field in error["description"]


def test_a_return_path_that_is_not_an_address_is_422(api):
    error = assert_error(api.post(URL, body(return_path="bounces"), format="json"), 422, "1300")
    assert "return_path" in error["description"]


def test_templated_addresses_are_checked_when_they_render(api):
    content = {**CONTENT, "from": "{{sender}}", "reply_to": "{{reply}}", "headers": {"Cc": "{{cc}}"}}
    assert api.post(URL, body(content=content), format="json").status_code == 200


def test_a_recipient_that_is_not_an_address_is_in_rcpt_to_errors(api):
    recipients = [{"address": {"email": "zoë-x@example.com", "name": "Zoe"}}, {"address": {"email": "not-an-address"}},
                  {"address": {"email": "c@example.com", "header_to": "nope"}}]  # fmt: skip
    payload = api.post(URL, body(recipients=recipients), format="json").json()
    assert payload["results"]["total_accepted_recipients"] == 1
    errors = payload["results"]["rcpt_to_errors"]
    assert [e["code"] for e in errors] == ["1300", "1300"]
    assert "recipients[1]" in errors[0]["description"] and "address.email" in errors[0]["description"]
    assert "recipients[2]" in errors[1]["description"] and "header_to" in errors[1]["description"]


def test_an_rfc822_sources_list_unsubscribe_post_replaces_engages_alone(api, relay):
    rfc = "From: a@sender.test\nSubject: hi\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n\nbody\n"
    run(api, body(content={"email_rfc822": rfc}))
    message = relay.received[0].message
    assert len(message.get_all("List-Unsubscribe")) == 1
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
