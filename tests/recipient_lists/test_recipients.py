"""The pure recipient rules shared with transmissions (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.addresses import address_problem, is_valid_email, split_address
from recipient_lists.recipients import normalize_recipient, normalize_recipients
from templates_app.ids import first_free_id, slug_from_name


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


def test_a_recipient_whose_email_is_not_an_address_is_1300_saying_why():
    recipient, error = normalize_recipient({"address": {"email": "not-an-address", "name": "X"}}, 3)
    assert recipient is None and error.code == "1300"
    assert "recipients[3]" in error.description and "@-sign" in error.description


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"address": {"email": "a@example.com", "header_to": "nope"}}, "header_to"),
        ({"address": {"email": "a@example.com", "header_to": "Shown <bad@>"}}, "header_to"),
        ({"address": "a@example.com", "return_path": "bounce at example.com"}, "return_path"),
    ],
)
def test_header_to_and_return_path_must_be_addresses(raw, field):
    recipient, error = normalize_recipient(raw, 0)
    assert recipient is None and error.code == "1300" and field in error.description


def test_a_non_ascii_local_part_and_an_idn_domain_are_accepted_as_given():
    recipient, error = normalize_recipient({"address": {"email": "zoë-x@bücher.de", "name": "Zoe"}}, 0)
    assert error is None and recipient["address"] == {"email": "zoë-x@bücher.de", "name": "Zoe"}


def test_split_address_handles_names_and_quotes():
    assert split_address('"Fred F" <fred@example.com>') == ("Fred F", "fred@example.com")
    assert split_address(" fred@example.com ") == ("", "fred@example.com")


def test_a_string_address_with_a_name_keeps_the_name():
    recipient, error = normalize_recipient({"address": "Fred <fred@example.com>"}, 0)
    assert error is None and recipient["address"] == {"email": "fred@example.com", "name": "Fred"}


def test_a_missing_email_is_1400_with_the_index():
    recipient, error = normalize_recipient({"address": {"name": "x"}}, 7)
    assert recipient is None and error.code == "1400" and "recipients[7]" in error.description


def test_a_non_object_recipient_is_1300():
    assert normalize_recipient("a@example.com", 0)[1].code == "1300"


def test_normalize_recipients_counts_all_rejections_but_bounds_errors():
    accepted, errors, rejected = normalize_recipients(
        [{"address": "ok@example.com"}, {"address": "x"}, {"address": "y"}], max_errors=1
    )
    assert len(accepted) == 1 and len(errors) == 1 and rejected == 2


@pytest.mark.parametrize(
    "name, slug",
    [("Summer Sale!", "summer-sale"), ("  --Ünïcode  ", "unicode"), ("!!!", "fallback"), ("A" * 100, "a" * 56)],
)
def test_slug_from_name(name, slug):
    assert slug_from_name(name, fallback="fallback") == slug


def test_first_free_id_appends_the_next_suffix():
    assert first_free_id("x", taken=lambda base: set()) == "x"
    assert first_free_id("x", taken=lambda base: {"x", "x-2", "x-4"}) == "x-3"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    local=st.lists(st.text(_ATEXT, min_size=1, max_size=30), min_size=1, max_size=3).map(".".join),
    labels=st.lists(st.text("abzäöüß日本-09", min_size=1, max_size=20), min_size=1, max_size=4),
    tld=st.sampled_from(["com", "de", "test", "local", "рф", "中国", "x1"]),
)
def test_the_per_domain_check_of_internationalized_domains_agrees_with_email_validator(local, labels, tld):
    assert_agrees_with_email_validator(f"{local}@{'.'.join(labels)}.{tld}")


@pytest.mark.parametrize(
    ("recipient", "field"),
    [
        ({"address": {"email": "a@example.com", "name": "n" * 1025}}, "address.name"),
        ({"address": {"email": "a@example.com", "header_to": "h" * 1025}}, "address.header_to"),
        ({"address": "N" * 1030 + " <a@example.com>"}, "address"),
        ({"address": "a@example.com", "tags": ["ok", "t" * 65]}, "tag"),
    ],
)
def test_overlong_recipient_fields_reject_that_recipient_alone(recipient, field):
    normalized, error = normalize_recipient(recipient, 3)
    assert normalized is None
    assert error.status == 422 and error.code == "1300"
    assert error.description.startswith("recipients[3]: ") and field in error.description


def test_tags_past_the_tenth_are_dropped_not_checked():
    normalized, error = normalize_recipient({"address": "a@example.com", "tags": ["t"] * 10 + ["x" * 500]}, 0)
    assert error is None and normalized["tags"] == ["t"] * 10
