"""Address syntax (mailcore/addresses.py): the fast check, its agreement with email-validator,
and display names split from addresses. No database."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.addresses import address_problem, is_valid_email, split_address


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        '"odd name"@example.com',
        "ü@bücher.de",
        "zoë-x@example.com",
        "a@xn--bcher-kva.de",
        "a@sender.test",
        "a@mailhost",
    ],
)
def test_valid_emails(email):
    assert is_valid_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "a@",
        "a b@example.com",
        "a..b@example.com",
        "a@exa mple.com",
        "a@-x.com",
        "a@x..com",
        "x" * 65 + "@e.com",
        "not-an-address",
        "a@localhost",
        "a@host.invalid",
        "a@ab--c.example.com",
        "a\n@example.com",
        "a@example.com\nBcc: b@example.com",
        "a@" + "x" * 250 + ".com",
        # Domain literals: SparkPost refuses them, and they name internal hosts.
        "u@[192.0.2.1]",
        "a@[10.0.0.5]",
        "b@[IPv6:::1]",
        "c@[169.254.169.254]",
        "bounce@[127.0.0.1]",
    ],
)
def test_invalid_emails(email):
    assert not is_valid_email(email)
    assert address_problem(email)  # says why


_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


def assert_agrees_with_email_validator(email: str) -> None:
    """Engage's shortcuts say of ``email`` what email-validator (with its options) says."""
    from email_validator import EmailNotValidError, validate_email

    from mailcore.addresses import _VALIDATOR_OPTIONS

    local = email.rpartition("@")[0]
    try:
        validate_email(email, **_VALIDATOR_OPTIONS)
        expected = len(local) <= 64 and len(email) <= 254
    except EmailNotValidError:
        expected = False
    assert is_valid_email(email) is expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    local=st.lists(st.text(_ATEXT, min_size=1, max_size=20), min_size=1, max_size=4).map(".".join),
    labels=st.lists(st.text("abz09-", min_size=1, max_size=12), min_size=1, max_size=4),
    tld=st.sampled_from(["com", "de", "test", "localhost", "local", "invalid", "onion", "x1", "co"]),
)
def test_the_fast_address_check_agrees_with_email_validator(local, labels, tld):
    assert_agrees_with_email_validator(f"{local}@{'.'.join(labels)}.{tld}")


def test_split_address_handles_names_and_quotes():
    assert split_address('"Fred F" <fred@example.com>') == ("Fred F", "fred@example.com")
    assert split_address(" fred@example.com ") == ("", "fred@example.com")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    local=st.lists(st.text(_ATEXT, min_size=1, max_size=30), min_size=1, max_size=3).map(".".join),
    labels=st.lists(st.text("abzäöüß日本-09", min_size=1, max_size=20), min_size=1, max_size=4),
    tld=st.sampled_from(["com", "de", "test", "local", "рф", "中国", "x1"]),
)
def test_the_per_domain_check_of_internationalized_domains_agrees_with_email_validator(local, labels, tld):
    assert_agrees_with_email_validator(f"{local}@{'.'.join(labels)}.{tld}")
