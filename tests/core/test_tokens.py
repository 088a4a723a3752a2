from __future__ import annotations

import json

import pytest

from mailcore.tokens import KINDS, InvalidToken, TokenSigner, decode

KEY_NEW = (7, b"n" * 32)
KEY_OLD = (3, b"o" * 32)
KEY_RETIRED = (1, b"r" * 32)
ISSUED = 1_790_000_000
YEAR = 31_536_000
META = {"customer_id": "123456", "plan": "gold", "name": "Zoë"}

MESSAGE = dict(
    message_id="0123456789abcdef0123",
    transmission_id="84736291837465012",
    rcpt_to="bob@example.com",
    campaign_id="spring-sale",
    template_id="newsletter",
    template_version=3,
    transactional=False,
    rcpt_meta=META,
    rcpt_tags=["promo", "eu"],
)


def _tokens(signer=None, **overrides):
    signer = signer or TokenSigner([KEY_NEW, KEY_OLD])
    return signer.for_message(**{**MESSAGE, "issued_at": ISSUED, **overrides})


def _decode(token, keys=(KEY_NEW, KEY_OLD), now=ISSUED + 60, max_age=YEAR):
    return decode(token, list(keys), now=now, max_age=max_age)


def test_click_token_round_trips_every_field():
    token = _tokens().click("https://example.com/a?b=1&c=2#x", "Shop now")
    decoded = _decode(token)
    assert decoded.kind == "click"
    assert decoded.message_id == MESSAGE["message_id"]
    assert decoded.transmission_id == MESSAGE["transmission_id"]
    assert decoded.rcpt_to == "bob@example.com"
    assert decoded.campaign_id == "spring-sale"
    assert decoded.template_id == "newsletter"
    assert decoded.template_version == 3
    assert decoded.transactional is False
    assert decoded.rcpt_meta == META
    assert decoded.rcpt_tags == ["promo", "eu"]
    assert decoded.link_name == "Shop now"
    assert decoded.target_url == "https://example.com/a?b=1&c=2#x"
    assert decoded.unsubscribe is False
    assert decoded.issued_at == ISSUED
    assert decoded.key_id == KEY_NEW[0]
    assert decoded.expired is False


def test_token_is_url_safe_base64_without_padding():
    token = _tokens().click("https://example.com/?q=ü", "Raw URL")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("kind", ["open", "initial_open", "unsubscribe"])
def test_open_kinds_round_trip_without_link(kind):
    decoded = _decode(_tokens().open(kind))
    assert decoded.kind == kind
    assert decoded.link_name is None and decoded.target_url is None
    assert decoded.rcpt_meta == META


def test_open_refuses_click_kind_and_unknown_kinds():
    with pytest.raises(ValueError):
        _tokens().open("click")
    with pytest.raises(KeyError):
        _tokens().open("bounce")


def test_unsubscribe_link_flag_round_trips():
    decoded = _decode(_tokens().click("https://example.com/unsub", "unsub", unsubscribe=True))
    assert decoded.unsubscribe is True and decoded.kind == "click"


def test_transactional_flag_round_trips():
    assert _decode(_tokens(transactional=True).open()).transactional is True


def test_missing_optional_fields_decode_as_none_and_empty():
    signer = TokenSigner([KEY_NEW])
    tokens = signer.for_message(message_id="abc", transmission_id="007", rcpt_to="a@b.c", issued_at=0)
    decoded = signer.decode(tokens.click("http://x.com", "Raw URL"), now=0, max_age=YEAR)
    assert (decoded.message_id, decoded.transmission_id) == ("abc", "007")
    assert decoded.campaign_id is None and decoded.template_id is None and decoded.template_version is None
    assert decoded.rcpt_meta == {} and decoded.rcpt_tags == []


def test_unusual_ids_are_kept_exactly():
    signer = TokenSigner([KEY_NEW])
    for mid, txid in [("ABCDEF0123456789ABCD", "18446744073709551616"), ("0" * 20, "0"), ("x", "")]:
        tokens = signer.for_message(message_id=mid, transmission_id=txid, rcpt_to="a@b.c", issued_at=5)
        decoded = signer.decode(tokens.open(), now=5, max_age=1)
        assert (decoded.message_id, decoded.transmission_id) == (mid, txid)


def test_clicks_carry_no_metadata_or_tags_when_include_metadata_is_off():
    tokens = _tokens(click_tracking_include_metadata=False)
    click = _decode(tokens.click("https://example.com/", "Raw URL"))
    assert click.rcpt_meta == {} and click.rcpt_tags == []
    assert _decode(tokens.open()).rcpt_meta == META


def test_metadata_over_max_len_is_dropped_not_truncated_for_clicks_and_opens():
    size = len(json.dumps(META, separators=(",", ":"), ensure_ascii=False).encode())
    at_limit = _tokens(max_metadata_len=size)
    assert _decode(at_limit.click("https://e.com/", "x")).rcpt_meta == META
    over = _tokens(max_metadata_len=size - 1)
    assert _decode(over.click("https://e.com/", "x")).rcpt_meta == {}
    assert _decode(over.open()).rcpt_meta == {}
    assert _decode(over.open()).rcpt_tags == ["promo", "eu"]


def test_default_metadata_limit_is_1000_bytes():
    fits = {"k": "v" * (1000 - len('{"k":""}'))}
    too_big = {"k": "v" * (1001 - len('{"k":""}'))}
    assert _decode(_tokens(rcpt_meta=fits).open()).rcpt_meta == fits
    assert _decode(_tokens(rcpt_meta=too_big).open()).rcpt_meta == {}


def test_large_metadata_is_compressed_and_round_trips():
    meta = {f"key_{i}": "the same words again and again" for i in range(20)}
    token = _tokens(rcpt_meta=meta).click("https://example.com/", "Raw URL")
    assert len(token) < len(json.dumps(meta))
    assert _decode(token).rcpt_meta == meta


def test_unicode_and_long_values_round_trip():
    url = "https://bücher.example/straße?q=" + "é" * 2000
    decoded = _decode(_tokens(rcpt_to="zoë@exämple.com").click(url, "Ünïcode ✓"))
    assert decoded.target_url == url and decoded.link_name == "Ünïcode ✓" and decoded.rcpt_to == "zoë@exämple.com"


def test_token_signed_with_older_configured_key_verifies():
    old_only = TokenSigner([KEY_OLD])
    token = _tokens(old_only).click("https://example.com/", "Raw URL")
    decoded = _decode(token, keys=(KEY_NEW, KEY_OLD))
    assert decoded.key_id == KEY_OLD[0]


def test_newest_key_signs():
    assert _decode(_tokens().open()).key_id == KEY_NEW[0]


def test_token_signed_with_retired_key_is_rejected():
    token = _tokens(TokenSigner([KEY_RETIRED])).click("https://example.com/", "Raw URL")
    with pytest.raises(InvalidToken):
        _decode(token, keys=(KEY_NEW, KEY_OLD))


def test_same_key_id_with_a_different_secret_is_rejected():
    token = _tokens(TokenSigner([(KEY_NEW[0], b"x" * 32)])).open()
    with pytest.raises(InvalidToken):
        _decode(token)


def test_expiry_is_reported_but_token_still_decodes():
    token = _tokens().click("https://example.com/", "Raw URL")
    assert _decode(token, now=ISSUED + YEAR).expired is False
    late = _decode(token, now=ISSUED + YEAR + 1)
    assert late.expired is True
    assert late.target_url == "https://example.com/"


def _tampered(token):
    alphabet = "AQgw_-zZ09a+/=.%~ é"
    for pos in range(len(token)):
        for ch in alphabet:
            if ch != token[pos]:
                yield token[:pos] + ch + token[pos + 1 :]


@pytest.mark.parametrize("kind", ["click", "open"])
def test_every_single_character_change_is_rejected(kind):
    tokens = _tokens()
    token = tokens.click("https://example.com/x?y=1", "Name") if kind == "click" else tokens.open()
    count = 0
    for bad in _tampered(token):
        count += 1
        with pytest.raises(InvalidToken):
            _decode(bad)
    assert count > 10 * len(token)


def test_every_single_byte_change_in_the_decoded_frame_is_rejected():
    import base64

    token = _tokens().click("https://example.com/x", "Name")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for pos in range(len(raw)):
        for delta in (1, 0x80, 0xFF):
            frame = bytearray(raw)
            frame[pos] ^= delta
            bad = base64.urlsafe_b64encode(bytes(frame)).rstrip(b"=").decode()
            with pytest.raises(InvalidToken):
                _decode(bad)


def test_every_truncation_is_rejected():
    token = _tokens().click("https://example.com/x", "Name")
    for length in range(len(token)):
        with pytest.raises(InvalidToken):
            _decode(token[:length])


@pytest.mark.parametrize("suffix", ["A", "AA", "AAA", "AAAA", "-", "_x", "=", "==", "%3D", " ", "\n", "/"])
def test_extended_tokens_are_rejected(suffix):
    token = _tokens().click("https://example.com/x", "Name")
    with pytest.raises(InvalidToken):
        _decode(token + suffix)
    with pytest.raises(InvalidToken):
        _decode(suffix + token)


@pytest.mark.parametrize("garbage", ["", "A", "AAAA", "!!!!", "é", "AQ", "a" * 200, "AQcHAAAAAA" + "A" * 30])
def test_garbage_is_rejected(garbage):
    with pytest.raises(InvalidToken):
        _decode(garbage)


def test_bad_version_is_rejected_even_with_a_valid_signature():
    import base64
    import hashlib
    import hmac

    token = _tokens().open()
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[0] = 2
    body = bytes(raw[:-16])
    tag = hmac.new(KEY_NEW[1], body, hashlib.sha256).digest()[:16]
    forged = base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        _decode(forged)


def test_signer_rejects_bad_key_configuration():
    with pytest.raises(ValueError):
        TokenSigner([])
    with pytest.raises(ValueError):
        TokenSigner([(1, b"short")])
    with pytest.raises(ValueError):
        TokenSigner([(256, b"k" * 32)])
    with pytest.raises(ValueError):
        TokenSigner([(1, b"k" * 32), (1, b"j" * 32)])


def test_issued_at_out_of_range_is_refused():
    with pytest.raises(ValueError):
        _tokens(issued_at=-1)
    with pytest.raises(ValueError):
        _tokens(issued_at=1 << 32)


#: Links already in inboxes: one token per kind, issued with KEY_NEW at ISSUED for MESSAGE
#: without metadata or tags (the click to https://example.com/, named "L").
ISSUED_TOKENS = {
    "open": "AQYHarE7gAAATAEjRWeJq83vASMBLQs1Xo5RtFtudWxsLG51bGwsImJvYkBleGFtcGxlLmNvbSIsInNwcmluZy1zYWxlIiwibmV3c2xldHRlciIsM11DPFUSHsG3EMJPhEVTpr3a",
    "initial_open": "AQYHarE7gAEATAEjRWeJq83vASMBLQs1Xo5RtFtudWxsLG51bGwsImJvYkBleGFtcGxlLmNvbSIsInNwcmluZy1zYWxlIiwibmV3c2xldHRlciIsM13FCm2STXVxrN5mMrPY_qdY",
    "click": "AQYHarE7gAIATAEjRWeJq83vASMBLQs1Xo5RtFtudWxsLG51bGwsImJvYkBleGFtcGxlLmNvbSIsInNwcmluZy1zYWxlIiwibmV3c2xldHRlciIsM10AAAFMaHR0cHM6Ly9leGFtcGxlLmNvbS880SATjICsUmBbotZYjgoq",
    "unsubscribe": "AQYHarE7gAMATAEjRWeJq83vASMBLQs1Xo5RtFtudWxsLG51bGwsImJvYkBleGFtcGxlLmNvbSIsInNwcmluZy1zYWxlIiwibmV3c2xldHRlciIsM13gHKk7LOTMjaAPIS2CiVkY",
}  # fmt: skip


def test_tokens_already_sent_keep_their_kind():
    """A token carries its kind as a number (its place in KINDS): links already sent decode to
    the kind they were issued for, whatever KINDS becomes."""
    assert sorted(ISSUED_TOKENS) == sorted(KINDS)
    for kind, token in ISSUED_TOKENS.items():
        decoded = _decode(token)
        assert (decoded.kind, decoded.message_id, decoded.issued_at) == (kind, MESSAGE["message_id"], ISSUED)


def test_event_extra_rides_in_every_token_and_a_token_without_it_is_unchanged():
    from mailcore.tokens import TokenSigner

    signer = TokenSigner([(1, b"k" * 32)])
    common = {"message_id": "0" * 20, "transmission_id": "7", "rcpt_to": "a@example.com", "issued_at": 100}
    plain = signer.for_message(**common)
    assert plain.click("https://x.example/", "n") == signer.for_message(**common, event_extra={}).click(
        "https://x.example/", "n"
    )
    extra = {"recv_method": "esmtp", "rcpt_type": "cc"}
    tokens = signer.for_message(**common, event_extra=extra, click_tracking_include_metadata=False)
    for token in (tokens.click("https://x.example/", "n"), tokens.open("open")):
        assert signer.decode(token, now=100, max_age=10).event_extra == extra
    assert signer.decode(plain.open("open"), now=100, max_age=10).event_extra == {}
