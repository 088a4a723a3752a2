"""Recipient data precedence, built-ins and key validation."""

from __future__ import annotations

import pytest

from mailcore.language import build_context, compile_part, validate_data_keys
from mailcore.language.context import RESERVED_KEYS


def ctx(**overrides):
    args = {
        "tx_metadata": None,
        "tx_substitution_data": None,
        "rcpt_metadata": None,
        "rcpt_substitution_data": None,
        "address_email": "jo@example.com",
        "address_name": "Jo",
        "return_path": "bounces@example.com",
    }
    args.update(overrides)
    return build_context(**args)


def render(template: str, data: dict) -> str:
    return compile_part(template, part="text", mode="text").render(data)


def test_spec_worked_example_recipient_substitution_data_wins() -> None:
    data = ctx(
        tx_metadata={"city": "SF"},
        tx_substitution_data={"city": "Seattle"},
        rcpt_metadata={"city": "Baltimore"},
        rcpt_substitution_data={"city": "New York"},
    )
    assert render("{{city}}", data) == "New York"


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"tx_metadata": {"city": "SF"}}, "SF"),
        ({"tx_metadata": {"city": "SF"}, "tx_substitution_data": {"city": "Seattle"}}, "Seattle"),
        ({"tx_substitution_data": {"city": "Seattle"}, "rcpt_metadata": {"city": "Baltimore"}}, "Baltimore"),
        ({"rcpt_metadata": {"city": "Baltimore"}, "rcpt_substitution_data": {"city": "New York"}}, "New York"),
        ({"tx_metadata": {"city": "SF"}, "rcpt_metadata": {"city": "Baltimore"}}, "Baltimore"),
    ],
)
def test_precedence_order_is_tx_meta_tx_data_rcpt_meta_rcpt_data(sources: dict, expected: str) -> None:
    assert render("{{city}}", ctx(**sources)) == expected


def test_merge_is_shallow() -> None:
    data = ctx(
        tx_substitution_data={"user": {"first": "A", "last": "B"}}, rcpt_substitution_data={"user": {"first": "C"}}
    )
    assert render("{{user.first}}-{{user.last}}", data) == "C-"


def test_builtins_are_present_and_cannot_be_overridden() -> None:
    data = ctx(rcpt_substitution_data={"email": "evil@x.com", "address": "nope", "return_path": "x"})
    assert (
        render("{{email}}|{{address.email}}|{{address.name}}|{{return_path}}", data)
        == "jo@example.com|jo@example.com|Jo|bounces@example.com"
    )


def test_missing_address_name_renders_empty() -> None:
    assert render("[{{address.name}}]", ctx(address_name=None)) == "[]"


def test_dynamic_content_comes_from_transmission_substitution_data_only() -> None:
    data = ctx(
        tx_substitution_data={"dynamic_plain": {"x": "tx {{email}}"}},
        rcpt_substitution_data={"dynamic_plain": {"x": "rcpt"}},
    )
    assert render("{{render_dynamic_content(dynamic_plain.x)}}", data) == "tx jo@example.com"


def test_hidden_dynamic_key_cannot_be_forged_by_recipient_data() -> None:
    from mailcore.language.compiler import DYNAMIC_SOURCE_KEY

    data = ctx(rcpt_substitution_data={DYNAMIC_SOURCE_KEY: {"dynamic_plain": {"x": "forged"}}})
    assert render("[{{render_dynamic_content(dynamic_plain.x)}}]", data) == "[]"


def test_inputs_are_not_mutated() -> None:
    tx = {"a": 1}
    rc = {"a": 2}
    ctx(tx_substitution_data=tx, rcpt_substitution_data=rc)
    assert tx == {"a": 1} and rc == {"a": 2}


def test_valid_keys_pass() -> None:
    assert validate_data_keys({"first_name": 1, "_x": 2, "A9": 3, "dynamic_html": {}}) == []


def test_none_is_valid_and_non_objects_are_not() -> None:
    assert validate_data_keys(None) == []
    assert validate_data_keys([1]) == ["substitution_data must be an object"]


@pytest.mark.parametrize("key", sorted(RESERVED_KEYS))
def test_reserved_keys_are_rejected(key: str) -> None:
    errors = validate_data_keys({key: 1, "fine": 2})
    assert len(errors) == 1 and f"'{key}'" in errors[0] and "reserved" in errors[0]


def test_every_key_the_spec_reserves_is_refused() -> None:
    """The spec's list (the language's keywords and the recipient built-ins), not RESERVED_KEYS:
    each key on it is refused as reserved, and so are they all at once, one error each."""
    spec = (
        "and break do else elseif end false for function if in local nil not or each repeat return then "
        "true until while address email email_id env_from return_path"
    ).split()
    errors = validate_data_keys({key: 1 for key in spec})
    assert len(errors) == len(spec)
    for key, error in zip(spec, errors, strict=True):
        assert f"'{key}'" in error and "reserved" in error


@pytest.mark.parametrize("key", ["1abc", "with-dash", "with space", "ünïcode", "", "a.b"])
def test_keys_outside_ascii_identifiers_are_rejected(key: str) -> None:
    errors = validate_data_keys({key: 1}, field="metadata")
    assert len(errors) == 1 and errors[0].startswith(f"metadata key '{key}' is invalid")


def test_reserved_word_check_is_case_sensitive_like_lua() -> None:
    assert validate_data_keys({"If": 1, "END": 2}) == []


def test_reserved_key_problem_names_the_first_reserved_key_and_ignores_non_objects() -> None:
    from mailcore.language import reserved_key_problem

    assert reserved_key_problem({"name": 1, "email": 2, "end": 3}).startswith(
        "substitution_data key 'email' is reserved"
    )
    assert reserved_key_problem({"name": 1, "End": 2}) is None
    assert reserved_key_problem(None) is None and reserved_key_problem([1]) is None
