"""The X-MSYS-API parser (SPEC B §9.1; SMTP-INJECTION.md §1.2-1.6, §5.9, §5.11)."""

from __future__ import annotations

import copy
import email.charset
import email.policy
import json
import pickle

import pytest

from mailcore.msys_api import (
    MAX_HEADER_BYTES,
    NO_HEADER,
    MsysApi,
    MsysApiError,
    MsysApiOptions,
    address_key,
    copy_recipients,
    msys_api_parse,
)
from mailcore.smtp_reply import SmtpReply
from tests.core.clients import message_bytes, nodemailer, phpmailer, raw_values

FULL = {
    "campaign_id": "spring-sale",
    "metadata": {"user_id": 42, "plan": {"name": "pro", "seats": [1, 2]}},
    "tags": ["a", "b"],
    "options": {"open_tracking": True, "click_tracking": False, "transactional": True, "inline_css": False},
    "cc": ["cc1@example.com", {"email": "cc2@example.com", "name": "Cc Two"}],
    "bcc": ["Bcc One <bcc1@example.com>"],
    "archive": [{"email": "archive@example.com"}],
    "substitution_data": {"ignored": True},
}


def _reply(values: list[str]) -> str:
    with pytest.raises(MsysApiError) as caught:
        msys_api_parse(values)
    return caught.value.reply.line()


def _parse(value: object) -> MsysApi:
    return msys_api_parse([json.dumps(value)])


# --- §5.11, the negative set about the header: each with its exact reply -------------------------


def test_bad_json_is_550_json_parsing_error_with_the_detail():
    assert _reply(['{"campaign_id": "x",}']) == (
        "550 5.6.0 JSON parsing error in X-MSYS-API: Expecting property name enclosed in double quotes: "
        "line 1 column 21 (char 20)"
    )


def test_metadata_array_is_550_must_be_of_type_json_object():
    assert _reply(['{"metadata": []}']) == "550 5.6.0 X-MSYS-API 'metadata' must be of type 'json object'"


def test_65_byte_campaign_id_is_550_limited_to_64_bytes():
    assert _reply([json.dumps({"campaign_id": "c" * 65})]) == (
        "550 5.6.0 smtpapi_campaign_id context is limited to 64 bytes"
    )


def test_campaign_id_limit_counts_utf8_bytes_not_characters():
    assert _parse({"campaign_id": "é" * 32}).campaign_id == "é" * 32
    assert _reply([json.dumps({"campaign_id": "é" * 33})]).endswith("limited to 64 bytes")


def test_fold_inside_a_value_is_accepted_as_one_space_as_momentum_documents():
    api = msys_api_parse(['{"campaign_id": "my_awes\r\n   ome_campaign"}'])
    assert api.campaign_id == "my_awes ome_campaign"


def test_fold_with_lf_or_tab_is_one_space_too():
    assert msys_api_parse(['{"campaign_id": "a\n\t\t b"}']).campaign_id == "a b"


def test_duplicate_header_is_refused():
    assert _reply(['{"campaign_id": "a"}', '{"campaign_id": "b"}']) == (
        "550 5.6.0 X-MSYS-API header may appear only once, found 2"
    )


def test_duplicate_header_from_a_whole_message_is_refused():
    message = message_bytes('{"campaign_id": "a"}', "{}")
    assert _reply(raw_values(message)).startswith("550 5.6.0 X-MSYS-API header may appear only once")


# --- other refusals (Engage's texts in SparkPost's shape, §5.9) ----------------------------------


@pytest.mark.parametrize(
    ("value", "reply"),
    [
        ("[]", "550 5.6.0 X-MSYS-API must be of type 'json object'"),
        ('"text"', "550 5.6.0 X-MSYS-API must be of type 'json object'"),
        ('{"campaign_id": 5}', "550 5.6.0 X-MSYS-API 'campaign_id' must be of type 'string'"),
        ('{"metadata": "x"}', "550 5.6.0 X-MSYS-API 'metadata' must be of type 'json object'"),
        ('{"tags": "a"}', "550 5.6.0 X-MSYS-API 'tags' must be of type 'json array'"),
        ('{"tags": ["a", 1]}', "550 5.6.0 X-MSYS-API 'tags' entries must be of type 'string'"),
        (json.dumps({"tags": ["t" * 65]}), "550 5.6.0 X-MSYS-API 'tags' entries must be at most 64 characters"),
        ('{"options": []}', "550 5.6.0 X-MSYS-API 'options' must be of type 'json object'"),
        (
            '{"options": {"open_tracking": "true"}}',
            "550 5.6.0 X-MSYS-API 'options.open_tracking' must be of type 'boolean'",
        ),
        (
            '{"options": {"click_tracking": 1}}',
            "550 5.6.0 X-MSYS-API 'options.click_tracking' must be of type 'boolean'",
        ),
        (
            '{"options": {"transactional": "1"}}',
            "550 5.6.0 X-MSYS-API 'options.transactional' must be of type 'boolean'",
        ),
        ('{"options": {"inline_css": 0}}', "550 5.6.0 X-MSYS-API 'options.inline_css' must be of type 'boolean'"),
        ('{"options": {"sandbox": "yes"}}', "550 5.6.0 X-MSYS-API 'options.sandbox' must be of type 'boolean'"),
        ('{"options": {"ip_pool": 3}}', "550 5.6.0 X-MSYS-API 'options.ip_pool' must be of type 'string'"),
        ('{"cc": "a@example.com"}', "550 5.6.0 X-MSYS-API 'cc' must be of type 'json array'"),
        (
            '{"bcc": [42]}',
            "550 5.6.0 X-MSYS-API 'bcc' entries must be email addresses or objects with an 'email' string",
        ),
        (
            '{"archive": [{"name": "x"}]}',
            "550 5.6.0 X-MSYS-API 'archive' entries must be email addresses or objects with an 'email' string",
        ),
        (
            '{"cc": [{"email": "a@example.com", "name": 5}]}',
            "550 5.6.0 X-MSYS-API 'cc[0].name' must be of type 'string'",
        ),
        (
            '{"cc": ["a@example.com", "not an address"]}',
            "550 5.6.0 X-MSYS-API 'cc[1]' is not a valid email address: An email address must have an @-sign.",
        ),
        ('{"a": NaN}', "550 5.6.0 JSON parsing error in X-MSYS-API: NaN is not a JSON number (RFC 8259 section 6)"),
        (
            '{"a": 1e999}',
            "550 5.6.0 JSON parsing error in X-MSYS-API: the number 1e999 is too large (at most about 1.8e308)",
        ),
        (
            '{"metadata": {"a": "x\\u0000"}}',
            "550 5.6.0 JSON parsing error in X-MSYS-API: a string holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            '{"metadata": {"\\ud83d": 1}}',
            "550 5.6.0 JSON parsing error in X-MSYS-API: a key holds a lone UTF-16 surrogate (a string cut in the "
            "middle of a character), which is not Unicode text",
        ),
        ("", "550 5.6.0 JSON parsing error in X-MSYS-API: Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_wrong_values_are_550_5_6_0_with_a_reply_naming_the_field(value, reply):
    assert _reply([value]) == reply


def test_more_than_1000_cc_bcc_and_archive_addresses_together_are_refused():
    value = {"cc": [f"c{i}@example.com" for i in range(400)], "bcc": [f"b{i}@example.com" for i in range(600)]}
    assert len(_parse(value).bcc) == 600
    value["archive"] = ["one.more@example.com"]
    assert _reply([json.dumps(value)]) == (
        "550 5.6.0 X-MSYS-API 'cc', 'bcc' and 'archive' may hold at most 1000 addresses together"
    )


def test_nesting_deeper_than_64_levels_is_a_json_error_not_a_crash():
    assert _reply(['{"metadata": ' + "[" * 64 + "]" * 64 + "}"]).endswith("nested deeper than 64 levels")
    assert _reply(["[" * 100_000]).startswith("550 5.6.0 JSON parsing error in X-MSYS-API")


def test_a_value_over_the_size_limit_is_refused_before_it_is_parsed():
    value = json.dumps({"metadata": {"x": "y" * MAX_HEADER_BYTES}})
    assert _reply([value]) == f"550 5.6.0 X-MSYS-API is larger than {MAX_HEADER_BYTES} bytes"
    assert msys_api_parse([value], max_bytes=2 * MAX_HEADER_BYTES).metadata is not None


def test_bytes_that_were_not_utf8_are_a_json_error():
    assert (
        _reply(['{"campaign_id": "\udcff"}'])
        == "550 5.6.0 JSON parsing error in X-MSYS-API: the header is not UTF-8 text"
    )


def test_reply_text_never_carries_a_line_break_or_non_ascii_from_data():
    reply = _reply(['{"cc": ["Zoë\\r\\nRCPT TO:<x@y> <zoë@exa mple.com>"]}'])
    assert reply.isascii() and "\r" not in reply and "\n" not in reply and len(reply) <= 512


# --- what is read --------------------------------------------------------------------------------


def test_no_header_is_the_empty_result():
    assert msys_api_parse([]) is NO_HEADER
    assert MsysApi(options=MsysApiOptions()) == NO_HEADER


def test_every_field_is_read():
    api = _parse(FULL)
    assert api.campaign_id == "spring-sale"
    assert api.metadata == FULL["metadata"]
    assert api.tags == ("a", "b")
    assert api.options == MsysApiOptions(open_tracking=True, click_tracking=False, transactional=True, inline_css=False)
    assert api.cc == (("", "cc1@example.com"), ("Cc Two", "cc2@example.com"))
    assert api.bcc == (("Bcc One", "bcc1@example.com"),)
    assert api.archive == (("", "archive@example.com"),)


def test_null_means_not_given_and_unknown_fields_are_ignored():
    api = _parse(
        {"campaign_id": None, "metadata": None, "tags": None, "options": {"open_tracking": None}, "cc": None, "x": 1}
    )
    assert api == MsysApi(ignored=("x",))


def test_fields_nothing_reads_are_named_so_the_listener_can_say_so():
    api = _parse({"campaign": "typo", "tracking_domain": "t.example", "campaign_id": "c"})
    assert api.campaign_id == "c" and api.ignored == ("campaign", "tracking_domain")


def test_only_the_first_10_tags_are_kept_whatever_follows():
    api = _parse({"tags": [f"t{i}" for i in range(10)] + [{"not": "a tag"}, "t" * 100]})
    assert api.tags == tuple(f"t{i}" for i in range(10))
    assert _parse({"tags": []}).tags == ()


def test_other_options_are_stored_as_sent():
    api = _parse({"options": {"ip_pool": "pool", "sandbox": True, "dkim_key": "k", "future": {"x": [1]}}})
    assert dict(api.options.other) == {"ip_pool": "pool", "sandbox": True, "dkim_key": "k", "future": {"x": [1]}}
    assert api.options.open_tracking is None


def test_metadata_size_is_not_a_reason_to_refuse():
    assert _parse({"metadata": {"big": "x" * 5000}}).metadata == {"big": "x" * 5000}


def test_substitution_data_is_ignored_whatever_it_is():
    assert _parse({"substitution_data": [1, "x"]}) == MsysApi(ignored=("substitution_data",))


def test_an_address_is_kept_once_across_cc_bcc_archive_first_list_wins():
    api = _parse(
        {
            "cc": ["a@example.com", "A <a@EXAMPLE.com>", "b@example.com"],
            "bcc": ["b@Example.COM", "c@example.com"],
            "archive": ["c@example.com", "a@example.com", "d@example.com"],
        }
    )
    assert api.cc == (("", "a@example.com"), ("", "b@example.com"))
    assert api.bcc == (("", "c@example.com"),)
    assert api.archive == (("", "d@example.com"),)


def test_local_parts_differing_in_case_are_different_addresses():
    assert address_key("Ann@Example.COM") == "Ann@example.com"
    assert len(_parse({"cc": ["ann@example.com", "Ann@example.com"]}).cc) == 2


def test_copy_recipients_leave_out_envelope_recipients_and_say_their_type():
    api = _parse(
        {"cc": ["to@example.com", "cc@example.com"], "bcc": ["bcc@example.com"], "archive": ["ar@example.com"]}
    )
    assert copy_recipients(["to@EXAMPLE.com"], api) == (
        (("", "cc@example.com"), "cc"),
        (("", "bcc@example.com"), "bcc"),
        (("", "ar@example.com"), "archive"),
    )


def test_parsed_values_are_read_only_and_still_json():
    api = _parse(FULL)
    with pytest.raises(TypeError):
        api.metadata["user_id"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        api.metadata["plan"]["seats"].append(3)  # type: ignore[index]
    assert json.loads(json.dumps(api.metadata)) == FULL["metadata"]
    assert pickle.loads(pickle.dumps(api)) == api
    assert copy.deepcopy(api) == api
    assert hash(api) == hash(_parse(FULL))


# --- what real clients send (§1.3, §3.1) ---------------------------------------------------------

NON_ASCII = {
    "campaign_id": "été-2025",
    "metadata": {"name": "Zoë Åström", "city": "Zürich", "note": "日本語 テキスト", "emoji": "🎉"},
    "tags": ["café", "naïve"],
    "options": {"open_tracking": True, "click_tracking": True},
}


def _compact(value: object, *, ensure_ascii: bool = False) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii)


def _two_kb() -> dict[str, object]:
    value: dict[str, object] = {
        "campaign_id": "django-2kb",
        "metadata": {f"key_{i:02d}": f"value-{i:02d}-" + "x" * 20 for i in range(40)},
        "tags": ["django"],
        "cc": ["cc@example.com"],
    }
    while len(_compact(value)) < 2040:
        value["metadata"]["pad"] = value["metadata"].get("pad", "") + "p"  # type: ignore[union-attr]
    return value


def test_django_2kb_single_line_header_is_accepted():
    value = _two_kb()
    message = message_bytes(_compact(value))
    line = next(line for line in message.split(b"\r\n") if line.startswith(b"X-MSYS-API:"))
    assert len(line) > 2048  # one physical line, over RFC 5322's 998
    api = msys_api_parse(raw_values(message))
    assert api.campaign_id == "django-2kb" and api.metadata == value["metadata"] and api.cc == (("", "cc@example.com"),)


def test_nodemailer_q_encoded_words_one_a_line_are_decoded():
    raw = nodemailer(_compact(_two_kb()))
    lines = raw.split("\r\n")
    assert len(lines) > 40 and max(map(len, lines)) <= 64 and lines[0].startswith("=?utf-8?q?")
    assert msys_api_parse([raw]).metadata == _two_kb()["metadata"]
    assert msys_api_parse([nodemailer(_compact(NON_ASCII))]) == _parse(NON_ASCII)


@pytest.mark.parametrize("encoding", [email.charset.BASE64, email.charset.QP])
def test_phpmailer_998_character_encoded_lines_are_decoded(encoding):
    raw = phpmailer(_compact(_two_kb()), encoding)
    lines = raw.split("\r\n")
    assert len(lines) >= 2 and max(map(len, lines)) > 900 and max(map(len, lines)) <= 998
    assert msys_api_parse([raw]).metadata == _two_kb()["metadata"]
    assert msys_api_parse([phpmailer(_compact(NON_ASCII), encoding)]) == _parse(NON_ASCII)


@pytest.mark.parametrize("value", [_compact(NON_ASCII), json.dumps(NON_ASCII, ensure_ascii=False)])
def test_python_email_message_smtp_policy_output_is_decoded(value):
    message = message_bytes(value, policy=email.policy.SMTP)
    assert b"=?utf-8?" in message
    assert msys_api_parse(raw_values(message)) == _parse(NON_ASCII)


def test_raw_utf8_and_backslash_u_escapes_read_the_same():
    assert msys_api_parse([_compact(NON_ASCII)]) == msys_api_parse([_compact(NON_ASCII, ensure_ascii=True)])


def test_a_long_value_folded_at_json_whitespace_reads_as_sent():
    value = json.dumps(NON_ASCII, ensure_ascii=True)
    folded = value.replace(", ", ",\r\n    ")
    assert msys_api_parse([folded]) == _parse(NON_ASCII)


def test_reply_is_a_checked_value():
    reply = SmtpReply(550, "5.6.0", "X-MSYS-API 'metadata' must be of type 'json object'")
    assert str(reply) == reply.line() == "550 5.6.0 X-MSYS-API 'metadata' must be of type 'json object'"
    for bad in [
        (250, "5.6.0", "x"),
        (55, "5.6.0", "x"),
        (550, "5.6", "x"),
        (550, "5.6.0", "a\r\nb"),
        (550, "5.6.0", "é"),
    ]:
        with pytest.raises(ValueError):
            SmtpReply(*bad)
