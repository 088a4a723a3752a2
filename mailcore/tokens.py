"""Signed, compact tracking tokens for the open (``/q/``), click (``/f/``) and unsubscribe
(``/u/``) endpoints: everything an engagement event needs, with no database read.

Pure: keys, times and limits are arguments; no clock, no I/O, no Django.

Token format (version 1). A token is the base64url encoding, without padding, of::

    offset  size  field
    0       1     version (1)
    1       1     flags: bit0 common JSON is raw-deflated, bit1 message id packed,
                  bit2 transmission id packed (other bits must be zero)
    2       1     key id (0-255) of the signing key
    3       4     issued_at, Unix seconds, unsigned big-endian
    7       1     kind: 0 open, 1 initial_open, 2 click, 3 unsubscribe (List-Unsubscribe)
    8       2     length of the common part, big-endian
    10      n     common part: [10-byte message id][8-byte transmission id] (each present
                  only when its flag says "packed"), then the JSON array
                  [message_id, transmission_id, rcpt_to, campaign_id, template_id,
                   template_version, transactional (0/1), rcpt_meta, rcpt_tags, event_extra]
                  (packed ids are null in the array; trailing default items are omitted;
                  the JSON is raw-deflated only when that makes it shorter)
    10+n    m     tail, clicks only: 1 flag byte (bit0 data-msys-unsubscribe, bit1 link
                  position present, bit2 written URL differs from the target), 2-byte name
                  length, the UTF-8 link name, [bit1: 2-byte link position, [bit2: 2-byte
                  length of the bytes the written URL shares with the start of the target,
                  2-byte length of the rest, the rest]], then the UTF-8 target URL up to the tag
    end-16  16    tag: the first 16 bytes (128 bits) of HMAC-SHA256(key, everything before)

Links as written (Engage's own, for the report's per-link rows): a click token made with
``position`` carries the link's 1-based position in its part and the URL as written in the
template (``{{...}}`` unrendered), stored as the bytes it shares with the start of the target
plus the rest (``https://x/a?id={{id}}`` beside ``https://x/a?id=42`` costs 6 bytes and
``{{id}}``; a link written without substitution costs 2 bytes). A token made without
``position`` (every token sent before these fields existed) is byte for byte what it was,
and decodes with ``link_position`` 0 and ``link_written_url`` None.

Speed: all of a message's tokens share the header and common part, so
:meth:`TokenSigner.for_message` serializes them once and pre-feeds them to a copy of the
HMAC; a click token then costs one HMAC copy + update over the tail, and a base64 encode
(a few microseconds, see ``bench/tokens.py``).

Metadata rules (SPEC A.2): ``rcpt_meta`` whose compact JSON exceeds ``max_metadata_len``
bytes is dropped from the token (never truncated), for opens and clicks alike; with
``click_tracking_include_metadata`` false, click tokens carry neither metadata nor tags.
Both are decided when the token is made, so old links keep what they were sent with.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "Decoded",
    "InvalidToken",
    "MessageTokens",
    "TokenSigner",
    "decode",
]

VERSION = 1
TAG_LEN = 16
KINDS = ("open", "initial_open", "click", "unsubscribe")
_KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}
_CLICK = _KIND_CODE["click"]

_F_DEFLATED = 0x01
_F_MID_PACKED = 0x02
_F_TXID_PACKED = 0x04
_F_KNOWN = _F_DEFLATED | _F_MID_PACKED | _F_TXID_PACKED
_T_UNSUBSCRIBE = 0x01
_T_POSITION = 0x02
_T_WRITTEN = 0x04
_T_KNOWN = _T_UNSUBSCRIBE | _T_POSITION | _T_WRITTEN
_U16 = struct.Struct(">H")
_WRITTEN = struct.Struct(">HHH")  # position, shared prefix length, rest length

_HEADER = struct.Struct(">BBBIBH")  # version, flags, key id, issued_at, kind, common length
_TAIL = struct.Struct(">BH")  # tail flags, name length
_MIN_LEN = _HEADER.size + TAG_LEN
# Compressing costs tens of microseconds and only pays off on longer metadata.
_DEFLATE_FROM = 200
_COMMON_DEFAULTS = (None, None, "", None, None, None, 0, None, None, None)

_B64_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_HEX20 = re.compile(r"[0-9a-f]{20}")
_UINT64 = re.compile(r"0|[1-9][0-9]{0,19}")


class InvalidToken(Exception):
    """The token is not one we signed: malformed, tampered, truncated or unknown key."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A verified token. ``expired`` tokens are still authentic: an expired click redirects
    to ``target_url`` but records no event."""

    kind: str
    message_id: str
    transmission_id: str
    rcpt_to: str
    campaign_id: str | None
    template_id: str | None
    template_version: int | str | None
    transactional: bool
    rcpt_meta: dict[str, Any]
    rcpt_tags: list[Any]
    #: Fields the message's events carry besides the standard ones (an SMTP injection's
    #: ``recv_method`` and ``rcpt_type``); {} for a token made without them.
    event_extra: dict[str, Any]
    link_name: str | None
    target_url: str | None
    unsubscribe: bool
    #: Clicks: the link's 1-based position among the tracked links of its part, 0 when the
    #: token does not say (made before the field existed, or without it).
    link_position: int
    #: Clicks with a position: the URL as written in the template (``{{...}}`` unrendered),
    #: ``target_url`` when written without substitution; None when the token does not say.
    link_written_url: str | None
    issued_at: int
    key_id: int
    expired: bool


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _common_part(fields: list[Any]) -> tuple[int, bytes]:
    """Serialize the per-message fields; returns (flags, bytes)."""
    flags = 0
    packed = b""
    message_id, transmission_id = fields[0], fields[1]
    if _HEX20.fullmatch(message_id):
        flags |= _F_MID_PACKED
        packed += bytes.fromhex(message_id)
        fields[0] = None
    if _UINT64.fullmatch(transmission_id) and int(transmission_id) < 1 << 64:
        flags |= _F_TXID_PACKED
        packed += int(transmission_id).to_bytes(8, "big")
        fields[1] = None
    while fields and fields[-1] == _COMMON_DEFAULTS[len(fields) - 1]:
        fields.pop()
    body = _compact_json(fields)
    if len(body) >= _DEFLATE_FROM:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -10, 2)
        deflated = compressor.compress(body) + compressor.flush()
        if len(deflated) < len(body):
            flags |= _F_DEFLATED
            body = deflated
    common = packed + body
    if len(common) > 0xFFFF:
        raise ValueError("per-message token data is over 64 KiB")
    return flags, common


class MessageTokens:
    """The tokens of one message: build with :meth:`TokenSigner.for_message`."""

    __slots__ = ("_click_prefix", "_click_mac", "_open_parts")

    def __init__(
        self, mac: Any, key_id: int, issued_at: int, open_common: tuple[int, bytes], click_common: tuple[int, bytes]
    ) -> None:
        self._open_parts = (mac, key_id, issued_at, open_common)
        flags, common = click_common
        self._click_prefix = _HEADER.pack(VERSION, flags, key_id, issued_at, _CLICK, len(common)) + common
        self._click_mac = mac.copy()
        self._click_mac.update(self._click_prefix)

    def click(self, url: str, name: str, *, unsubscribe: bool = False, position: int = 0, written: str = "") -> str:
        """The token for a click on ``url`` (as the browser will be redirected to it) under
        link ``name``; ``unsubscribe`` marks a ``data-msys-unsubscribe="1"`` link.
        ``position`` (1-65535; 0 for none) and ``written`` (the URL as written in the
        template, "" for ``url`` itself) identify the template link (module docstring)."""
        name_bytes = name.encode("utf-8", "surrogatepass")
        url_bytes = url.encode("utf-8", "surrogatepass")
        flags = _T_UNSUBSCRIBE if unsubscribe else 0
        link = b""
        if 0 < position <= 0xFFFF:
            if not written or written == url:
                flags |= _T_POSITION
                link = _U16.pack(position)
            else:
                written_bytes = written.encode("utf-8", "surrogatepass")
                # Usually the target starts as the written URL does up to its first "{{".
                shared = written_bytes.find(b"{{")
                if not (0 <= shared <= 0xFFFF and url_bytes.startswith(written_bytes[:shared])):
                    shared = _shared_prefix(written_bytes, url_bytes)
                rest = written_bytes[shared:]
                if len(rest) <= 0xFFFF:
                    flags |= _T_POSITION | _T_WRITTEN
                    link = _WRITTEN.pack(position, shared, len(rest)) + rest
        tail = _TAIL.pack(flags, len(name_bytes)) + name_bytes + link + url_bytes
        mac = self._click_mac.copy()
        mac.update(tail)
        return _b64encode(self._click_prefix + tail + mac.digest()[:TAG_LEN])

    def open(self, kind: str = "open") -> str:
        """The token for the ``open`` (bottom) or ``initial_open`` (top) pixel, or for the
        ``unsubscribe`` (List-Unsubscribe) URL."""
        code = _KIND_CODE[kind]
        if code == _CLICK:
            raise ValueError("use click() for click tokens")
        mac, key_id, issued_at, (flags, common) = self._open_parts
        body = _HEADER.pack(VERSION, flags, key_id, issued_at, code, len(common)) + common
        mac = mac.copy()
        mac.update(body)
        return _b64encode(body + mac.digest()[:TAG_LEN])


def _shared_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` share (at most 65535)."""
    low, high = 0, min(len(a), len(b), 0xFFFF)
    # A binary search over slice comparisons (in C) beats a Python loop over the bytes.
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class TokenSigner:
    """Signs and verifies tokens with a set of ``(key_id, secret)`` keys.

    ``keys`` are newest first: the first key signs, every key verifies, so a key can be
    rotated in (put it first) and retired later (remove it once its links may lapse).
    Key ids are 0-255 and unique; secrets are at least 16 bytes.
    """

    __slots__ = ("_macs", "_signing_id")

    def __init__(self, keys: Sequence[tuple[int, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one tracking key is required")
        macs: dict[int, Any] = {}
        for key_id, secret in keys:
            if not 0 <= key_id <= 255:
                raise ValueError(f"key id {key_id} is not in 0-255")
            if key_id in macs:
                raise ValueError(f"key id {key_id} is configured twice")
            if len(secret) < 16:
                raise ValueError(f"key {key_id} is shorter than 16 bytes")
            macs[key_id] = hmac.new(bytes(secret), digestmod=hashlib.sha256)
        self._macs = macs
        self._signing_id = keys[0][0]

    def for_message(
        self,
        *,
        message_id: str,
        transmission_id: str,
        rcpt_to: str,
        issued_at: int,
        campaign_id: str | None = None,
        template_id: str | None = None,
        template_version: int | str | None = None,
        transactional: bool = False,
        rcpt_meta: Mapping[str, Any] | None = None,
        rcpt_tags: Sequence[Any] | None = None,
        click_tracking_include_metadata: bool = True,
        max_metadata_len: int = 1000,
        event_extra: Mapping[str, Any] | None = None,
    ) -> MessageTokens:
        """Serialize one message's shared token data once; its tokens are then cheap.

        ``rcpt_meta`` is dropped when its compact JSON is over ``max_metadata_len`` bytes;
        click tokens leave out metadata and tags unless ``click_tracking_include_metadata``.
        ``event_extra`` (small, JSON) goes into every token as is: fields the message's
        engagement events carry besides the standard ones. A token made without it is
        byte for byte what it was before the field existed (trailing defaults are omitted).
        """
        if not 0 <= issued_at < 1 << 32:
            raise ValueError("issued_at must be Unix seconds in 0..2**32-1")
        meta = dict(rcpt_meta) if rcpt_meta else None
        if meta is not None and len(_compact_json(meta)) > max_metadata_len:
            meta = None
        tags = list(rcpt_tags) if rcpt_tags else None
        fields = [
            message_id,
            transmission_id,
            rcpt_to,
            campaign_id,
            template_id,
            template_version,
            1 if transactional else 0,
        ]
        extra = dict(event_extra) if event_extra else None
        open_common = _common_part([*fields, meta, tags, extra])
        click_common = open_common if click_tracking_include_metadata else _common_part([*fields, None, None, extra])
        return MessageTokens(self._macs[self._signing_id], self._signing_id, issued_at, open_common, click_common)

    def for_message_reference(self, *, message_id: str, rcpt_to: str, issued_at: int) -> MessageTokens:
        """The tokens of a message whose recipient did not consent to tracking (SPEC A.5: no
        metadata in any URL): they name the message and its recipient, nothing else (an
        empty ``transmission_id``; no campaign, template, metadata, tags or extra fields).
        Enough to unsubscribe; the event's other fields are the lander's to find from the
        message's send-side events (``analytics.ingest.message_references_fill``)."""
        return self.for_message(message_id=message_id, transmission_id="", rcpt_to=rcpt_to, issued_at=issued_at)

    def decode(self, token: str, *, now: int, max_age: int) -> Decoded:
        """Verify ``token`` and return its contents; raise :class:`InvalidToken` unless it
        is exactly a token signed by one of our keys. ``expired`` is set when the token is
        more than ``max_age`` seconds older than ``now``."""
        raw = _b64decode(token)
        if len(raw) < _MIN_LEN:
            raise InvalidToken("token too short")
        version, flags, key_id, issued_at, kind, common_len = _HEADER.unpack_from(raw)
        if version != VERSION:
            raise InvalidToken("unknown token version")
        base = self._macs.get(key_id)
        if base is None:
            raise InvalidToken("unknown key id")
        mac = base.copy()
        mac.update(raw[:-TAG_LEN])
        if not hmac.compare_digest(mac.digest()[:TAG_LEN], raw[-TAG_LEN:]):
            raise InvalidToken("bad signature")
        try:
            return _parse(raw, flags, key_id, issued_at, kind, common_len, expired=now - issued_at > max_age)
        except InvalidToken:
            raise
        except Exception as exc:  # a signed token we cannot read is still not a valid one
            raise InvalidToken(f"unreadable token: {exc}") from exc


def _b64decode(token: str) -> bytes:
    if not isinstance(token, str) or len(token) % 4 == 1 or not _B64_ALPHABET.fullmatch(token):
        raise InvalidToken("not base64url")
    data = token.encode("ascii")
    try:
        raw = binascii.a2b_base64(data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise InvalidToken("not base64url") from exc
    # Unused low bits in the last character give several spellings of the same bytes.
    if _b64encode(raw) != token:
        raise InvalidToken("not canonical base64url")
    return raw


def _parse(
    raw: bytes, flags: int, key_id: int, issued_at: int, kind: int, common_len: int, *, expired: bool
) -> Decoded:
    if flags & ~_F_KNOWN or kind >= len(KINDS):
        raise InvalidToken("unknown flags or kind")
    pos = _HEADER.size
    end = pos + common_len
    body_end = len(raw) - TAG_LEN
    if end > body_end:
        raise InvalidToken("common part overruns the token")
    message_id = transmission_id = None
    if flags & _F_MID_PACKED:
        message_id = raw[pos : pos + 10].hex()
        pos += 10
    if flags & _F_TXID_PACKED:
        transmission_id = str(int.from_bytes(raw[pos : pos + 8], "big"))
        pos += 8
    if pos > end:
        raise InvalidToken("common part too short")
    body = raw[pos:end]
    if flags & _F_DEFLATED:
        inflater = zlib.decompressobj(-15)
        body = inflater.decompress(body, 1 << 20)
        if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise InvalidToken("bad compressed data")
    fields = json.loads(body.decode("utf-8", "surrogatepass"))
    if not isinstance(fields, list) or len(fields) > len(_COMMON_DEFAULTS):
        raise InvalidToken("bad common part")
    fields += _COMMON_DEFAULTS[len(fields) :]
    if message_id is not None:
        fields[0] = message_id
    if transmission_id is not None:
        fields[1] = transmission_id
    link_name = target_url = written_url = None
    unsubscribe = False
    position = 0
    if kind == _CLICK:
        tail_flags, name_len = _TAIL.unpack_from(raw, end)
        name_start = end + _TAIL.size
        url_start = name_end = name_start + name_len
        if tail_flags & ~_T_KNOWN or (tail_flags & _T_WRITTEN and not tail_flags & _T_POSITION):
            raise InvalidToken("bad click tail")
        written: tuple[int, bytes] | None = None
        if tail_flags & _T_WRITTEN:
            position, shared, rest_len = _WRITTEN.unpack_from(raw, name_end)
            rest_start = name_end + _WRITTEN.size
            url_start = rest_start + rest_len
            written = (shared, raw[rest_start:url_start])
        elif tail_flags & _T_POSITION:
            (position,) = _U16.unpack_from(raw, name_end)
            url_start = name_end + _U16.size
        if url_start > body_end or (tail_flags & _T_POSITION and position == 0):
            raise InvalidToken("bad click tail")
        unsubscribe = bool(tail_flags & _T_UNSUBSCRIBE)
        link_name = raw[name_start:name_end].decode("utf-8", "surrogatepass")
        url_bytes = raw[url_start:body_end]
        target_url = url_bytes.decode("utf-8", "surrogatepass")
        if written is not None:
            shared, rest = written
            if shared > len(url_bytes):
                raise InvalidToken("bad click tail")
            written_url = (url_bytes[:shared] + rest).decode("utf-8", "surrogatepass")
        elif tail_flags & _T_POSITION:
            written_url = target_url
    elif end != body_end:
        raise InvalidToken("unexpected tail")
    mid, txid, rcpt_to, campaign_id, template_id, template_version, transactional, meta, tags, extra = fields
    if not isinstance(mid, str) or not isinstance(txid, str) or not isinstance(rcpt_to, str):
        raise InvalidToken("bad ids")
    return Decoded(
        kind=KINDS[kind],
        message_id=mid,
        transmission_id=txid,
        rcpt_to=rcpt_to,
        campaign_id=campaign_id,
        template_id=template_id,
        template_version=template_version,
        transactional=bool(transactional),
        rcpt_meta=meta or {},
        rcpt_tags=tags or [],
        event_extra=extra if isinstance(extra, dict) else {},
        link_name=link_name,
        target_url=target_url,
        unsubscribe=unsubscribe,
        link_position=position,
        link_written_url=written_url,
        issued_at=issued_at,
        key_id=key_id,
        expired=expired,
    )


def decode(token: str, keys: Sequence[tuple[int, bytes]], *, now: int, max_age: int) -> Decoded:
    """Verify and decode ``token`` against ``keys``; a convenience for one-off use (a
    long-lived :class:`TokenSigner` avoids rebuilding the HMAC keys per call)."""
    return TokenSigner(keys).decode(token, now=now, max_age=max_age)
