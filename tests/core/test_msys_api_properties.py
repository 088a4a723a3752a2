"""Property tests: any JSON object the header can carry round-trips, in every form real clients
write it; any text at all gives an MsysApi or an MsysApiError, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.msys_api import MsysApi, MsysApiError, msys_api_parse
from mailcore.smtp_policy import PolicyAccept, PolicyDecisionError, policy_decision_check
from mailcore.smtp_settings import SmtpSettings
from tests.core.clients import nodemailer, phpmailer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a header can carry: no NUL (PostgreSQL cannot store it), no lone surrogate (not
# Unicode); "=?" is left out because a literal encoded word in a plain value is decoded (RFC 2047).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20).filter(
    lambda text: "=?" not in text
)
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=6)
_HEADER_LINE_ENDS = {ord(char): f"\\u{ord(char):04x}" for char in "\x85\u2028\u2029"}
FORMS = st.sampled_from(["compact", "ascii", "spaced", "nodemailer", "phpmailer"])


def _written(value: object, form: str) -> str:
    if form == "compact":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if form == "ascii":
        return json.dumps(value)
    if form == "spaced":
        return json.dumps(value, indent=1).replace("\n", "\r\n")  # folded at JSON whitespace
    # email.header.Header (the stand-in for the clients' encoders) takes NEL, U+2028 and U+2029
    # for line ends and writes a space: JSON-escape them, as the real encoders need not.
    text = json.dumps(value, ensure_ascii=False).translate(_HEADER_LINE_ENDS)
    return nodemailer(text) if form == "nodemailer" else phpmailer(text)


@SETTINGS
@given(metadata=OBJECTS, campaign=st.none() | TEXT, tags=st.none() | st.lists(TEXT, max_size=12), form=FORMS)
def test_any_json_object_round_trips_in_every_client_form(metadata, campaign, tags, form):
    value = {"metadata": metadata, "campaign_id": campaign, "tags": tags, "options": {"other": metadata}}
    api = msys_api_parse([_written(value, form)])
    assert api.metadata == metadata
    assert api.campaign_id == campaign
    assert api.tags == (None if tags is None else tuple(tags[:10]))
    assert api.options.other == {"other": metadata}
    assert json.loads(json.dumps(api.metadata)) == json.loads(json.dumps(metadata))


@SETTINGS
@given(st.lists(st.text(), max_size=3))
def test_any_text_gives_a_result_or_an_msys_api_error(values):
    try:
        result = msys_api_parse(values)
    except MsysApiError as error:
        line = error.reply.line()
        assert line.startswith("550 5.6.0 ") and line.isascii() and line.isprintable()
    else:
        assert isinstance(result, MsysApi)


JSONISH = st.text(alphabet='{}[]":,0123456789.eE+-tnrufalsNI \\\r\n\tabcé=?', max_size=60)


@SETTINGS
@given(JSONISH, st.sampled_from(["", '{"metadata": ', '{"cc": [', '{"options": {"open_tracking": ']))
def test_near_json_text_gives_a_result_or_an_msys_api_error(text, prefix):
    try:
        msys_api_parse([prefix + text])
    except MsysApiError as error:
        assert error.reply.code == 550


@SETTINGS
@given(JSON, st.sampled_from(["campaign_id", "metadata", "tags", "open_tracking", "tracking_domain", "link_expiry"]))
def test_any_policy_value_is_accepted_or_refused_with_a_reply(value, name):
    try:
        decision = policy_decision_check(SmtpSettings(**{name: value}))
    except (PolicyDecisionError, MsysApiError) as error:
        assert error.reply.code in (451, 550)
    else:
        assert isinstance(decision, PolicyAccept)
