"""The pure recipient rules shared with transmissions (no database)."""

from __future__ import annotations

import pytest

from recipient_lists.recipients import normalize_recipient, normalize_recipients


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
