"""The security tester's findings F1, F6, F8, F9 and the Bcc note (issue 10, Deliver 1), each
kept as it was reported and checked the way a recipient sees the message: through the API,
the in-process relay, parsed with ``email.policy.default``."""

from __future__ import annotations

import base64

import pytest

from tests.helpers import assert_error
from tests.transmissions.helpers import CONTENT, addresses, body, lines_fit, no_defects, run

URL = "/api/v1/transmissions"
PLAIN = {"from": "a@example.com", "subject": "s", "text": "hello"}
EVIL = [
    "evil@attacker.example, Team",
    "Team <evil@attacker.example>",
    "G: evil@attacker.example;",
    "(c) evil@attacker.example (d)",
]


def one(v: str) -> list[dict]:
    return [{"address": "jo@example.com", "substitution_data": {"v": v}}]


# --- F1: substitution data never adds, removes or changes an address -----------------------------


@pytest.mark.parametrize("v", EVIL)
def test_substitution_data_in_a_reply_to_or_cc_display_name_stays_in_that_name(api, relay, v):
    content = {**PLAIN, "reply_to": "{{v}} <r@example.com>", "headers": {"Cc": "{{v}} <cc@example.com>"}}
    run(api, body(content=content, recipients=one(v)))
    (received,) = relay.received
    message = received.message
    assert addresses(message, "Reply-To") == [(v, "r@example.com")]
    assert addresses(message, "Cc") == [(v, "cc@example.com")]
    assert received.rcpt_tos == ["jo@example.com"]
    no_defects(message)


@pytest.mark.parametrize("v", EVIL)
def test_substitution_data_in_an_rfc822_address_header_stays_in_the_display_name(api, relay, v):
    source = "From: {{v}} <team@example.com>\nCc: {{v}} <cc@example.com>\nReply-To: {{v}} <r@example.com>\nSubject: s\n\nhello\n"
    run(api, body(content={"email_rfc822": source}, recipients=one(v)))
    message = relay.received[0].message
    assert addresses(message, "From") == [(v, "team@example.com")]
    assert addresses(message, "Cc") == [(v, "cc@example.com")]
    assert addresses(message, "Reply-To") == [(v, "r@example.com")]
    no_defects(message)


def test_a_template_that_lists_several_addresses_gets_exactly_those(api, relay):
    content = {**PLAIN, "headers": {"Cc": '"{{v}}" <{{cc}}>, boss@example.com, Team: {{v}} <t@example.com>;'}}
    recipients = [{"address": "jo@example.com", "substitution_data": {"v": "x@evil.example, y", "cc": "c@example.com"}}]
    run(api, body(content=content, recipients=recipients))
    message = relay.received[0].message
    assert addresses(message, "Cc") == [
        ("x@evil.example, y", "c@example.com"), ("", "boss@example.com"), ("x@evil.example, y", "t@example.com")
    ]  # fmt: skip


def test_a_substituted_address_must_render_exactly_one_address_or_that_message_fails(api, relay, events):
    content = {**PLAIN, "reply_to": "{{reply}}", "headers": {"Cc": "Desk <{{cc}}>"}}
    recipients = [
        {"address": "a@example.com", "substitution_data": {"reply": "r@example.com, evil@attacker.example", "cc": "c@example.com"}},
        {"address": "b@example.com", "substitution_data": {"reply": "r@example.com", "cc": "Evil <evil@attacker.example>"}},
        {"address": "c@example.com", "substitution_data": {"reply": "bounce@[127.0.0.1]", "cc": "c@example.com"}},
        {"address": "d@example.com", "substitution_data": {"reply": "Support <s@example.com>", "cc": "c@example.com"}},
    ]  # fmt: skip
    transmission = run(api, body(content=content, recipients=recipients))
    assert [r.rcpt_tos for r in relay.received] == [["d@example.com"]]
    message = relay.received[0].message
    assert addresses(message, "Reply-To") == [("Support", "s@example.com")]
    assert addresses(message, "Cc") == [("Desk", "c@example.com")]
    assert transmission.num_failed_gen == 3
    failures = {e["rcpt_to"]: e["reason"] for e in events() if e["type"] == "generation_failure"}
    assert set(failures) == {"a@example.com", "b@example.com", "c@example.com"}
    assert "Reply-To header" in failures["a@example.com"] and "not an email address" in failures["a@example.com"]
    assert "Cc header" in failures["b@example.com"]
    assert "Reply-To header" in failures["c@example.com"]


def test_a_substituted_cc_that_renders_empty_is_left_out(api, relay):
    content = {**PLAIN, "headers": {"Cc": "{{cc}}"}}
    run(api, body(content=content, recipients=[{"address": "jo@example.com"}]))
    assert relay.received[0].message["Cc"] is None


def test_a_block_that_spans_addresses_of_an_address_header_is_a_422_naming_it(api):
    content = {**PLAIN, "headers": {"Cc": "a@example.com{{if b}}, b@example.com{{end}}"}}
    error = assert_error(api.post(URL, body(content=content), format="json"), 422, "3000")
    assert "Header:Cc" in error["description"] and "one address" in error["description"]


def test_a_literal_address_next_to_a_substitution_is_still_checked_at_the_api(api):
    content = {**PLAIN, "reply_to": "{{v}} <not-an-address>"}
    error = assert_error(api.post(URL, body(content=content), format="json"), 422, "1300")
    assert "content.reply_to" in error["description"]


# --- F6: no line over 998 octets reaches the relay -------------------------------------------------


def test_an_rfc822_source_with_overlong_lines_goes_out_folded_and_re_encoded(api, relay):
    source = "From: team@example.com\nSubject: " + "A" * 2000 + "\n\nbody " + "B" * 3000 + "\nend\n"
    run(api, body(content={"email_rfc822": source}))
    received = relay.received[0]
    lines_fit(received.data)
    message = received.message
    assert message["Subject"] == "A" * 2000
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_content().replace("\r\n", "\n") == "body " + "B" * 3000 + "\nend\n"
    no_defects(message)


def test_an_rfc822_attachment_with_an_overlong_line_is_re_encoded_with_the_same_bytes(api, relay):
    payload = base64.b64encode(bytes(range(256)) * 10).decode()  # one 3,416-character line
    source = (
        'From: team@example.com\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nhello\n"
        "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + payload + "\n"
        "--b\nContent-Type: text/csv\n\n" + "x," * 800 + "\n--b--\n"
    )
    run(api, body(content={"email_rfc822": source}))
    received = relay.received[0]
    lines_fit(received.data)
    _text, blob, csv = received.message.iter_parts()
    assert blob.get_content() == bytes(range(256)) * 10
    assert csv.get_content() == "x," * 800
    no_defects(received.message)


def test_an_rfc822_part_header_over_998_octets_is_a_422_naming_the_line(api):
    source = (
        'From: team@example.com\nSubject: s\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\nX-Long: " + "L" * 1200 + "\n\nhello\n--b--\n"
    )
    error = assert_error(api.post(URL, body(content={"email_rfc822": source}), format="json"), 422, "1300")
    assert "line 7" in error["description"] and "998" in error["description"]


def test_an_inline_body_line_of_5000_characters_without_spaces_fits_every_line(api, relay):
    long = "x" * 5000
    run(api, body(content={**PLAIN, "text": long, "html": f"<p>{long}</p>"}))
    received = relay.received[0]
    lines_fit(received.data)
    text, html = (part.get_content() for part in received.message.iter_parts())
    assert text.rstrip("\n") == long and html.startswith(f"<p>{long}</p>")  # then the open pixel


# --- F8: domain literals are refused ----------------------------------------------------------


def test_domain_literal_recipients_are_rejected_alone(api):
    recipients = [{"address": a} for a in ("a@[10.0.0.5]", "b@[IPv6:::1]", "c@[169.254.169.254]", "ok@example.com")]
    payload = api.post(URL, body(recipients=recipients), format="json").json()
    assert payload["results"]["total_accepted_recipients"] == 1
    errors = payload["results"]["rcpt_to_errors"]
    assert [e["code"] for e in errors] == ["1300"] * 3
    assert [e["description"].split(":")[0] for e in errors] == ["recipients[0]", "recipients[1]", "recipients[2]"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"return_path": "bounce@[127.0.0.1]"}, "return_path"),
        ({"content": {**CONTENT, "from": "news@[127.0.0.1]"}}, "content.from"),
        ({"content": {**CONTENT, "reply_to": "r@[10.0.0.5]"}}, "content.reply_to"),
        ({"content": {**CONTENT, "headers": {"Cc": "c@[169.254.169.254]"}}}, "content.headers.Cc"),
    ],
)
def test_a_domain_literal_in_a_transmission_field_is_422(api, overrides, field):
    error = assert_error(api.post(URL, body(**overrides), format="json"), 422, "1300")
    assert field in error["description"]


# --- F9: attachment and inline image types are media types ----------------------------------------


@pytest.mark.parametrize("key", ["attachments", "inline_images"])
@pytest.mark.parametrize("media_type", ['text/plain; name="x.exe"', "t\u00e9xt/pl\u00e1in", "text", "text/", "a/b/c"])
def test_a_file_type_that_is_not_type_slash_subtype_is_422_naming_it(api, key, media_type):
    files = [{"type": "image/png", "name": "ok.png", "data": "aGk="}, {"type": media_type, "name": "x", "data": "aGk="}]
    response = api.post(URL, body(content={**CONTENT, key: files}), format="json")
    assert response.status_code == 422, response.content
    assert f"content.{key}[1].type" in response.json()["errors"][0]["description"]


def test_a_media_type_with_plus_and_dots_is_accepted(api, relay):
    files = [{"type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "name": "a.xlsx", "data": "aGk="},
             {"type": "image/svg+xml", "name": "b.svg", "data": "aGk="}]  # fmt: skip
    run(api, body(content={**CONTENT, "attachments": files}))
    types = [part.get_content_type() for part in relay.received[0].message.iter_attachments()]
    assert types == ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "image/svg+xml"]


# --- Bcc: never written ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bcc", "bcc", "Resent-Bcc"])
def test_a_bcc_in_content_headers_is_422_pointing_to_header_to(api, name):
    content = {**CONTENT, "headers": {name: "hidden@example.com"}}
    error = assert_error(api.post(URL, body(content=content), format="json"), 422, "3002")
    assert f"content.headers.{name}" in error["description"] and "header_to" in error["description"]


def test_a_bcc_in_an_rfc822_source_is_422(api):
    source = "From: team@example.com\nBcc: hidden@example.com\nSubject: s\n\nhello\n"
    error = assert_error(api.post(URL, body(content={"email_rfc822": source}), format="json"), 422, "1300")
    assert "Bcc" in error["description"] and "header_to" in error["description"]
