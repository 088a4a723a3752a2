"""The pure recipient rules shared with transmissions (no database)."""

from __future__ import annotations

import pytest

from recipient_lists.recipients import is_valid_email, normalize_recipient, normalize_recipients, split_address
from templates_app.ids import first_free_id, slug_from_name


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        '"odd name"@example.com',
        "u@[192.0.2.1]",
        "ü@bücher.de",
        "a@localhost",
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
    ],
)
def test_invalid_emails(email):
    assert not is_valid_email(email)


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
