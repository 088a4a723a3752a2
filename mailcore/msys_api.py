"""The ``X-MSYS-API`` header of an SMTP-injected message (PURE: the standard library and the
core's address and header helpers, no Django, no I/O).

:func:`msys_api_parse` turns every raw occurrence of the header into one :class:`MsysApi`,
or raises :class:`MsysApiError` whose ``reply`` the listener sends after the final dot.
Sources: SPEC A.4 and B §9.1; SMTP-INJECTION.md §1.2 (fields), §1.3 (folding, RFC 2047),
§1.4 and §5.9 (replies), §1.6 (cc/bcc/archive), §3.4 (pitfalls).

Reading the value (§1.3):

1. More than one ``X-MSYS-API`` header → refused (§3.4; Engage's reply): which one wins is
   not documented anywhere, and guessing would apply settings the sender did not mean.
2. Unfolding: each line break followed by spaces or tabs becomes **one** space, as
   SparkPost and Momentum document (``"my_awes\\r\\n   ome_campaign"`` →
   ``"my_awes ome_campaign"``); RFC 5322 §2.2.3 unfolding would keep all three spaces.
3. RFC 2047 encoded words are decoded (RFC 2047 §6; Nodemailer, PHPMailer and Python's
   ``policy.SMTP`` send a long or non-ASCII value so), whitespace between two adjacent
   encoded words dropped (§6.2). Raw UTF-8 is taken as it is.
4. The result is parsed as strict JSON (RFC 8259): no ``NaN``/``Infinity``, no number too
   large for a double, no NUL or lone surrogate in a string or key (PostgreSQL stores
   neither; the same refusals as the API's JSON parser, ``engage/api/parsers.py``), at
   most :data:`MAX_DEPTH` levels of nesting, at most :data:`MAX_HEADER_BYTES` of UTF-8.

Fields (§1.2; ``null`` anywhere means "not given", SPEC A.1; other fields are ignored and
named in :attr:`MsysApi.ignored`, so that the listener can say so in its log):

- ``campaign_id``: a string of at most :data:`MAX_CAMPAIGN_ID_BYTES` UTF-8 bytes.
- ``metadata``: a JSON object, kept whole; its size is not a reason to refuse (§1.2: the
  size limits only trim what goes into tracked links, SPEC A.2).
- ``tags``: an array; the first :data:`MAX_TAGS` are kept and the rest ignored, whatever
  they are (§1.2 "extras ignored"); each kept one a string of at most
  :data:`MAX_TAG_CHARS` characters (the REST rule, ``recipient_lists.recipients``).
- ``options``: an object. ``open_tracking``, ``click_tracking``, ``transactional`` and
  ``inline_css`` are booleans and read into :class:`MsysApiOptions`; every other key is kept
  in ``other`` (``sandbox`` and ``skip_suppression`` must be booleans, ``ip_pool`` and
  ``dkim_key`` strings; unknown keys are kept as sent).
- ``cc``, ``bcc``, ``archive``: arrays of ``"addr"`` (or ``"Name <addr>"``) or
  ``{"email": ..., "name": ...}``, at most :data:`MAX_COPY_ADDRESSES` entries in the three
  together; each address must pass :func:`mailcore.addresses.address_problem`. An address
  is kept once across the three lists (§1.6 "a single instance of each message"): the first
  of cc, bcc, archive in that order keeps it, since a cc address is shown in ``Cc:`` to
  everyone anyway (the order is Engage's; the docs do not say). Two addresses are the same
  when :func:`address_key` says so. Removing the envelope recipients from these lists is the
  listener's (:func:`copy_recipients`).
- ``substitution_data``: ignored (no templating over SMTP, SPEC A.4).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from mailcore.addresses import address_problem, split_address
from mailcore.headers import Address, decode_words
from mailcore.rfc822 import Field
from mailcore.smtp_reply import SmtpReply, SmtpReplyError, reply_text

__all__ = [
    "HEADER_NAME",
    "MAX_CAMPAIGN_ID_BYTES",
    "MAX_COPY_ADDRESSES",
    "MAX_DEPTH",
    "MAX_HEADER_BYTES",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "NO_HEADER",
    "COPY_TYPES",
    "CopyType",
    "MsysApi",
    "MsysApiError",
    "MsysApiOptions",
    "SmtpReply",
    "address_key",
    "campaign_id_reply",
    "copy_recipients",
    "envelope_recipients",
    "json_text_check",
    "json_value_check",
    "msys_api_parse",
    "msys_api_values",
    "string_problem",
]

HEADER_NAME = "X-MSYS-API"
MAX_CAMPAIGN_ID_BYTES = 64  # SPEC B §9.1, the same limit as REST (transmissions.payload)
MAX_TAGS = 10  # SPEC B §9.1, the same as REST (recipient_lists.recipients)
MAX_TAG_CHARS = 64  # Engage: the REST rule (recipient_lists.recipients)
MAX_COPY_ADDRESSES = 1000  # cc + bcc + archive, SMTP-INJECTION.md §1.2
MAX_HEADER_BYTES = 256 * 1024  # the decoded value, SMTP-INJECTION.md §5.10
MAX_DEPTH = 64  # Engage: nesting of arrays and objects in the value

CopyType = Literal["cc", "bcc", "archive"]
#: The copy kinds, in fan-out order; also the ``rcpt_type`` values of their events (§1.6).
COPY_TYPES: tuple[CopyType, ...] = ("cc", "bcc", "archive")
_BOOLEAN_OPTIONS = ("open_tracking", "click_tracking", "transactional", "inline_css")
_OTHER_OPTION_TYPES: dict[str, tuple[type, str]] = {
    "sandbox": (bool, "boolean"),
    "skip_suppression": (bool, "boolean"),
    "ip_pool": (str, "string"),
    "dkim_key": (str, "string"),
}
_FOLD = re.compile(r"(?:\r\n|\r|\n)[ \t]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


# --- replies -------------------------------------------------------------------------------------


class MsysApiError(SmtpReplyError):
    """The header is refused; :attr:`reply` is the ``550 5.6.0`` reply to send (§1.4, §5.9)."""


def _refuse(text: str) -> NoReturn:
    raise MsysApiError(SmtpReply(550, "5.6.0", reply_text(text)))


def _json_error(detail: str) -> NoReturn:
    # SparkPost FAQ (error-messages-smtp.md): "JSON parsing error in X-MSYS-API", and
    # "usually supplies additional details": the detail follows a colon (§5.9).
    _refuse(f"JSON parsing error in X-MSYS-API: {detail}")


def _type_error(name: str, json_type: str) -> NoReturn:
    # SparkPost's text for 'metadata' (smtp.apib); the same shape for the other fields is
    # Engage's extrapolation (§5.9, unverified).
    _refuse(f"X-MSYS-API '{name}' must be of type '{json_type}'")


def campaign_id_reply() -> SmtpReply:
    """The reply for a campaign id over :data:`MAX_CAMPAIGN_ID_BYTES` bytes, from the header or
    a policy: Momentum's and SparkPost's text, which names the policy context variable
    (x-msys-api_header.md; smtp.apib; SMTP-INJECTION.md §5.8)."""
    return SmtpReply(550, "5.6.0", f"smtpapi_campaign_id context is limited to {MAX_CAMPAIGN_ID_BYTES} bytes")


# --- read-only JSON ------------------------------------------------------------------------------


def _read_only(*_args: object, **_kwargs: object) -> NoReturn:
    raise TypeError("X-MSYS-API values are read-only")


class _FrozenObject(dict[str, Any]):
    """A JSON object that cannot be changed; still a ``dict`` for ``json.dumps`` and ``==``."""

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenObject, (dict(self),))

    def __copy__(self) -> _FrozenObject:
        return self

    def __deepcopy__(self, _memo: dict[int, Any]) -> _FrozenObject:
        return self

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


class _FrozenArray(list[Any]):
    """A JSON array that cannot be changed; still a ``list`` for ``json.dumps`` and ``==``."""

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _read_only
    sort = reverse = __iadd__ = __imul__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenArray, (list(self),))

    def __copy__(self) -> _FrozenArray:
        return self

    def __deepcopy__(self, _memo: dict[int, Any]) -> _FrozenArray:
        return self

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


def string_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "holds a NUL character (\\u0000), which cannot be stored"
    if _SURROGATE.search(value):
        return "holds a lone UTF-16 surrogate (a string cut in the middle of a character), which is not Unicode text"
    return None


def _freeze(value: Any, depth: int, check_strings: bool) -> Any:
    """``value`` (as ``json.loads`` made it) read-only, refusing what cannot be stored."""
    if isinstance(value, str):
        if check_strings:
            problem = string_problem(value)
            if problem:
                _json_error(f"a string {problem}")
        return value
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            _json_error(f"the value is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            return _FrozenArray(_freeze(item, depth + 1, check_strings) for item in value)
        frozen = _FrozenObject()
        for key, item in value.items():
            if check_strings and string_problem(key):
                _json_error(f"a key {string_problem(key)}")
            dict.__setitem__(frozen, key, _freeze(item, depth + 1, check_strings))
        return frozen
    return value


def _reject_constant(name: str) -> NoReturn:
    _json_error(f"{name} is not a JSON number (RFC 8259 section 6)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _json_error(f"the number {text[:40]} is too large (at most about 1.8e308)")
    return value


def _strict_loads(text: str) -> Any:
    """``text`` as strict JSON (module docstring, step 4), objects and arrays read-only."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except MsysApiError:
        raise
    except RecursionError:
        _json_error(f"the value is nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        _json_error(str(exc))
    # A string can only hold NUL or a lone surrogate through a \u escape, or, in text that did
    # not come from the header (a policy's), a raw surrogate: only then are strings walked.
    suspect = _SUSPECT_ESCAPE.search(text) is not None or _SURROGATE.search(text) is not None
    return _freeze(data, 0, suspect)


def json_text_check(text: str) -> Any:
    """``text`` parsed as the header's JSON is (module docstring, step 4), objects and arrays
    read-only; raises :class:`MsysApiError` (``550 5.6.0 JSON parsing error in X-MSYS-API:
    ...``)."""
    return _strict_loads(text)


def json_value_check(value: object) -> Any:
    """``value`` (any Python value) as the read-only JSON the header would give for it, so a
    policy's metadata is held to the header's rules; raises :class:`MsysApiError` (a ``550
    5.6.0`` JSON parsing error) when it is not JSON, or holds what the header refuses."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        _json_error(str(exc))
    return _strict_loads(text)


# --- the parsed header ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MsysApiOptions:
    """``options`` of the header (§1.2). Each boolean is None when not given.

    ``other``: every other option as sent (``sandbox``, ``skip_suppression``, ``ip_pool``,
    ``dkim_key``, unknown keys), read-only JSON values; stored, not acted on.
    """

    open_tracking: bool | None = None
    click_tracking: bool | None = None
    transactional: bool | None = None
    inline_css: bool | None = None
    other: Mapping[str, object] = field(default_factory=_FrozenObject)


@dataclass(frozen=True, slots=True)
class MsysApi:
    """One message's ``X-MSYS-API`` header, checked (module docstring for every rule).

    - ``campaign_id``: at most 64 UTF-8 bytes, or None.
    - ``metadata``: the JSON object (read-only, but a ``dict`` for ``json.dumps``), or None.
    - ``tags``: at most 10 strings, or None when not given (``()`` when given empty).
    - ``options``: :class:`MsysApiOptions`.
    - ``cc``, ``bcc``, ``archive``: ``(display name, address)`` pairs (:data:`mailcore.headers.Address`,
      the name ``""`` when none), in the order sent, each address once across the three.
    - ``ignored``: the top-level fields given that nothing reads (``substitution_data``, a
      misspelt ``campaign``, ``tracking_domain``, which only a policy sets), sorted.
    """

    campaign_id: str | None = None
    metadata: Mapping[str, object] | None = None
    tags: tuple[str, ...] | None = None
    options: MsysApiOptions = field(default_factory=MsysApiOptions)
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    archive: tuple[Address, ...] = ()
    ignored: tuple[str, ...] = ()


#: The top-level fields :func:`msys_api_parse` reads.
READ_FIELDS = frozenset({"campaign_id", "metadata", "tags", "options", "cc", "bcc", "archive"})

#: What a message without the header gets.
NO_HEADER = MsysApi()


def address_key(address: str) -> str:
    """The identity of ``address`` when deduplicating recipients: the domain is compared
    without case (RFC 5321 §2.4: it is a host name), the local part exactly (§2.4: it may be
    case-sensitive)."""
    local, at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if at else address


def envelope_recipients(rcpt_tos: Iterable[str]) -> tuple[str, ...]:
    """The RCPT TO addresses one copy each goes to: each :func:`address_key` once, the first
    spelling kept, in order (§1.6: "each recipient will only receive a single instance of
    each message"; Django's SMTP backend names an address twice when it is in both ``to``
    and ``cc``)."""
    kept: dict[str, str] = {}
    for address in rcpt_tos:
        kept.setdefault(address_key(address), address)
    return tuple(kept.values())


def copy_recipients(envelope: Iterable[str], api: MsysApi) -> tuple[tuple[Address, CopyType], ...]:
    """The ``cc``, ``bcc`` and ``archive`` copies to make besides one per envelope recipient:
    each of ``api``'s addresses whose :func:`address_key` is not one of ``envelope``'s (the
    RCPT TO addresses), with its type, in the order cc, bcc, archive (§1.6: "each recipient
    will only receive a single instance of each message")."""
    seen = {address_key(address) for address in envelope}
    return tuple(
        (entry, kind) for kind in COPY_TYPES for entry in getattr(api, kind) if address_key(entry[1]) not in seen
    )


def _campaign_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        _type_error("campaign_id", "string")
    if len(value.encode("utf-8")) > MAX_CAMPAIGN_ID_BYTES:
        raise MsysApiError(campaign_id_reply())
    return value


def _tags(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        _type_error("tags", "json array")
    tags = tuple(value[:MAX_TAGS])
    for tag in tags:
        if not isinstance(tag, str):
            _refuse("X-MSYS-API 'tags' entries must be of type 'string'")  # Engage's text
        if len(tag) > MAX_TAG_CHARS:
            _refuse(f"X-MSYS-API 'tags' entries must be at most {MAX_TAG_CHARS} characters")  # Engage's text
    return tags


def _options(value: object) -> MsysApiOptions:
    if value is None:
        return MsysApiOptions()
    if not isinstance(value, dict):
        _type_error("options", "json object")
    flags: dict[str, bool] = {}
    other = _FrozenObject()
    for key, item in value.items():
        if item is None:
            continue
        if key in _BOOLEAN_OPTIONS:
            if not isinstance(item, bool):
                _type_error(f"options.{key}", "boolean")
            flags[key] = item
            continue
        expected = _OTHER_OPTION_TYPES.get(key)
        if expected is not None and not isinstance(item, expected[0]):
            _type_error(f"options.{key}", expected[1])
        dict.__setitem__(other, key, item)
    return MsysApiOptions(**flags, other=other)


def _copy_entry(kind: str, index: int, entry: object) -> Address:
    name: object = ""
    if isinstance(entry, str):
        name, email = split_address(entry)
    elif isinstance(entry, dict) and isinstance(entry.get("email"), str):
        email, name = entry["email"].strip(), entry.get("name")
        if name is None:
            name = ""
        elif not isinstance(name, str):
            _type_error(f"{kind}[{index}].name", "string")
    else:
        # Engage's text: the docs give none for this.
        _refuse(f"X-MSYS-API '{kind}' entries must be email addresses or objects with an 'email' string")
    problem = address_problem(email)
    if problem is not None:
        _refuse(f"X-MSYS-API '{kind}[{index}]' is not a valid email address: {problem}")  # Engage's text
    return name, email


def _copies(data: Mapping[str, object]) -> dict[CopyType, tuple[Address, ...]]:
    lists: dict[CopyType, list[object]] = {}
    for kind in COPY_TYPES:
        value = data.get(kind)
        if value is None:
            value = []
        elif not isinstance(value, list):
            _type_error(kind, "json array")
        lists[kind] = value
    if sum(map(len, lists.values())) > MAX_COPY_ADDRESSES:
        # Engage's text; the limit is SparkPost's (§1.2).
        _refuse(f"X-MSYS-API 'cc', 'bcc' and 'archive' may hold at most {MAX_COPY_ADDRESSES} addresses together")
    seen: set[str] = set()
    result: dict[CopyType, tuple[Address, ...]] = {}
    for kind, entries in lists.items():
        kept: list[Address] = []
        for index, entry in enumerate(entries):
            address = _copy_entry(kind, index, entry)
            key = address_key(address[1])
            if key not in seen:
                seen.add(key)
                kept.append(address)
        result[kind] = tuple(kept)
    return result


def msys_api_values(data: bytes, fields: Iterable[Field]) -> list[str]:
    """The raw ``X-MSYS-API`` values among ``fields`` (the top entity's, from
    :func:`mailcore.rfc822.split_message` of ``data``), folds kept, for
    :func:`msys_api_parse`. ``Field.value`` will not do: it is unfolded the RFC 5322 way,
    which keeps every space of a fold. Bytes that are not UTF-8 become lone surrogates, which
    the parser refuses."""
    values: list[str] = []
    for item in fields:
        if item.name.lower() == "x-msys-api":
            text = data[item.start : item.end].decode("utf-8", "surrogateescape")
            values.append(text.partition(":")[2])
    return values


def _text(raw: str) -> str:
    """The raw value unfolded (one space per fold) and RFC 2047-decoded (module docstring)."""
    return decode_words(_FOLD.sub(" ", raw).strip(" \t\r\n"))


def msys_api_parse(values: Sequence[str], *, max_bytes: int = MAX_HEADER_BYTES) -> MsysApi:
    """Every raw ``X-MSYS-API`` value of one message (as it appeared after the colon, folds
    and encoded words included, as ``str``) → :class:`MsysApi`; ``[]`` → :data:`NO_HEADER`.

    ``max_bytes``: the largest decoded value accepted, in UTF-8 bytes.

    Raises :class:`MsysApiError` with the ``550 5.6.0`` reply for the first problem found; the
    rules, replies and sources are in the module docstring. Nothing else is raised, whatever
    the input.
    """
    if not values:
        return NO_HEADER
    if len(values) > 1:
        _refuse(f"X-MSYS-API header may appear only once, found {len(values)}")  # Engage's text (§3.4)
    raw = values[0]
    if not isinstance(raw, str):
        _json_error("the header value is not text")
    if len(raw) > 4 * max_bytes:  # an encoded word holds at least one byte per 3 characters
        _refuse(f"X-MSYS-API is larger than {max_bytes} bytes")  # Engage's text
    text = _text(raw)
    if _SURROGATE.search(text):
        _json_error("the header is not UTF-8 text")
    if len(text.encode("utf-8")) > max_bytes:
        _refuse(f"X-MSYS-API is larger than {max_bytes} bytes")  # Engage's text
    data = _strict_loads(text)
    if not isinstance(data, dict):
        _refuse("X-MSYS-API must be of type 'json object'")  # Engage's text, in SparkPost's shape
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        _type_error("metadata", "json object")
    copies = _copies(data)
    return MsysApi(
        campaign_id=_campaign_id(data.get("campaign_id")),
        metadata=metadata,
        tags=_tags(data.get("tags")),
        options=_options(data.get("options")),
        cc=copies["cc"],
        bcc=copies["bcc"],
        archive=copies["archive"],
        ignored=tuple(sorted(name for name in data if name not in READ_FIELDS)),
    )
