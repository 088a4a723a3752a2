"""Messages built with the one header writer (mailcore/headers.py, tested alone in
tests/core/test_headers.py): whatever the substitution data, the message generated is the one
Engage means, parsed with ``email.policy.default`` as a mail reader parses it. No database."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.headers import envelope_address, sanitize


def longest(data: bytes) -> int:
    return max(len(line) for line in data.split(b"\n"))


# --- the property: whatever the data, the message is what Engage meant ---------------------------

ADDRESSES = ["jo@example.com", "a.b+tag@sub.example.co.uk", "list@bücher.de", "x@münchen.test"]
anything = st.text(st.characters(codec="utf-8"), max_size=60)  # what JSON can carry
# A literal From name is one header line: a CR or LF in it is refused (templates_app.content).
one_line = anything.filter(lambda text: "\r" not in text and "\n" not in text)
with_surrogates = st.text(max_size=60) | st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lo"]), max_size=20)


def a_label(address: str) -> str:
    return envelope_address(address)


def squeeze(text: str) -> str:
    """Whitespace removed: Python's phrase parser puts a space between adjacent encoded
    words (RFC 2047 §6.2 says to drop it), so display names compare without whitespace."""
    return "".join(text.split())


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.slow
@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    subject=with_surrogates,
    custom=with_surrogates,
    from_name=one_line,
    rcpt_name=anything,
    reply_name=with_surrogates,
    cc_name=anything,
    boss_name=with_surrogates,
    header_to=st.none() | st.sampled_from(ADDRESSES),
    cc=st.sampled_from(ADDRESSES),
    email=st.sampled_from(ADDRESSES),
)
def test_any_unicode_in_data_names_and_headers_gives_the_message_engage_means(
    subject, custom, from_name, rcpt_name, reply_name, cc_name, boss_name, header_to, cc, email
):
    """Substitution data in display names (Reply-To, Cc: quoted, unquoted, next to literal
    text) stays in those names: the addresses are exactly the template's, no others."""
    from recipient_lists.recipients import normalize_recipient
    from templates_app.content import normalize_content
    from transmissions.generation import message_generate, prepare
    from transmissions.models import Transmission

    content = normalize_content(
        {"from": {"email": "news@sender.test", "name": from_name}, "subject": "S {{subject}} E", "text": "Hi",
         "reply_to": "{{reply_name}} <reply@sender.test>",
         "headers": {"X-Custom": "{{custom}}",
                     "CC": '"{{cc_name}}" <{{cc}}>, {{email}}, Boss {{boss_name}} <boss@sender.test>'}},
        max_bytes=10**6,
    )  # fmt: skip
    address = {"email": email, "name": rcpt_name, **({"header_to": header_to} if header_to else {})}
    # {{email}} is the built-in (the recipient's address): "email" is a reserved key (SPEC B §4.2).
    data = {"subject": subject, "custom": custom, "reply_name": reply_name, "cc_name": cc_name, "cc": cc,
            "boss_name": boss_name}  # fmt: skip
    recipient, error = normalize_recipient({"address": address, "substitution_data": data}, 0)
    assert error is None
    transmission = Transmission(id=1, content=content, options={}, metadata={}, campaign_id="c", return_path="")
    data = message_generate(prepare(transmission), message_id="m1", recipient=recipient, now=0).data

    assert longest(data) <= 998
    message = message_from_bytes(data, policy=default)
    assert not message.defects
    assert list(message.keys()) == ["From", "To", "Subject", "Reply-To", "Date", "Message-ID", "X-Custom", "CC",
                                    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
                                    "Content-Transfer-Encoding"]  # fmt: skip
    for name in message:
        assert not message[name].defects, (name, message[name].defects)

    def shown(name):
        return [(squeeze(a.display_name), a.addr_spec) for a in message[name].addresses]

    assert shown("From") == [(squeeze(sanitize(from_name)), "news@sender.test")]
    assert shown("To") == [(squeeze(sanitize(rcpt_name)), a_label(header_to or email))]
    assert shown("Reply-To") == [(squeeze(sanitize(reply_name)), "reply@sender.test")]
    assert shown("CC") == [
        (squeeze(sanitize(cc_name)), a_label(cc)),
        ("", a_label(email)),
        (squeeze("Boss" + sanitize(boss_name)), "boss@sender.test"),
    ]
    assert message["Subject"] == sanitize(f"S {subject} E")
    assert message["X-Custom"] == sanitize(custom).strip(" ")
    assert message.get_content().rstrip("\n") == "Hi"
