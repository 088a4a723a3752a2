"""Second attack on issue 10 (tests the way a recipient sees the result: what the relay got)."""

from __future__ import annotations

import pytest

from tests.transmissions.helpers import CONTENT, URL, body, lines_fit, run

PLAIN = {"from": CONTENT["from"], "subject": "Hi"}


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"])
def test_characters_python_splits_lines_at_do_not_let_a_long_line_through(api, relay, separator):
    """VT, FF, FS-RS, NEL and LS end a line for ``str.splitlines`` but not on the wire."""
    text = ("A" * 800 + separator) * 3
    run(api, body(content={**PLAIN, "text": text, "html": f"<p>{text}</p>"}))
    received = relay.received[0]
    lines_fit(received.data)
    plain, html = (part.get_content() for part in received.message.iter_parts())
    assert plain.rstrip("\n") == text and html.startswith(f"<p>{text}</p>")


def test_substitution_data_cannot_make_a_recipients_message_too_long_to_send(api, relay):
    data = body(content={**PLAIN, "text": "{{v}}"})
    data["recipients"] = [{"address": "r@example.com", "substitution_data": {"v": ("B" * 800 + "\x1e") * 3}}]
    run(api, data)
    lines_fit(relay.received[0].data)


@pytest.mark.parametrize(
    "email", ["a@127.0.0.1", "b@0x7f000001", "c@2130706433", "d@127.1", "e@0x7f.1", "f@10.0.0.5", "g@example.123"]
)
def test_a_recipient_at_an_ip_address_spelled_as_a_host_name_is_rejected_alone(api, email):
    data = body(recipients=[{"address": email}, {"address": "ok@example.com"}])
    payload = api.post(URL, data, format="json").json()["results"]
    assert payload["total_accepted_recipients"] == 1
    (error,) = payload["rcpt_to_errors"]
    assert error["description"].startswith("recipients[0]") and "IP address" in error["description"]
