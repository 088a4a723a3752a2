"""The injection policy's interface: what the listener shows a policy, what a policy may
answer, and the check of that answer (PURE: no Django, no I/O; calling the policy, in a
worker thread with a time limit, is the listener's).

A policy is a callable named by ``ENGAGE_SMTP_POLICY`` (a dotted path), called once per DATA
transaction with a :class:`PolicyView`, returning a :data:`PolicyDecision`: ``None`` (no
opinion), an :class:`SmtpSettings` (settings for the whole message), a :class:`PolicyAccept`
(settings for the message and per recipient) or a :class:`PolicyReject` (a reply of its
choosing). It is Momentum's policy with ``smtpapi_*`` context variables set in
``validate_data_spool_each_rcpt`` (SPEC A.4, B §9.2; SMTP-INJECTION.md §1.10, §5.8);
like those variables, booleans may be ``"1"``, ``"0"``, ``"true"``, ``"false"``, ``metadata``
a JSON object string, ``tags`` a JSON array string and ``link_expiry`` a string of seconds, so
Lua rules port one to one.

:func:`policy_decision_check` holds what came back to the header's rules
(:mod:`mailcore.msys_api`) and returns it in its one checked form; the listener then
resolves each recipient with ``smtp_settings_resolve(decision.settings_for(rcpt), header,
listener)`` (:mod:`mailcore.smtp_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, NoReturn, TypeAlias

from mailcore.domains import tracking_domain_normalize
from mailcore.msys_api import (
    MAX_CAMPAIGN_ID_BYTES,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MsysApi,
    MsysApiError,
    address_key,
    campaign_id_reply,
    json_text_check,
    json_value_check,
    string_problem,
)
from mailcore.smtp_reply import SmtpReply, SmtpReplyError
from mailcore.smtp_settings import SmtpSettings, smtp_settings_overlay

__all__ = [
    "MAX_LINK_EXPIRY",
    "POLICY_FAILED",
    "PolicyAccept",
    "PolicyDecision",
    "PolicyDecisionError",
    "PolicyReject",
    "PolicyView",
    "SmtpReply",
    "SmtpSettings",
    "policy_decision_check",
]

#: Ten years, the bound ``ENGAGE_TRACKING_LINK_EXPIRY`` has (engage/settings.py).
MAX_LINK_EXPIRY = 10 * 365 * 86400

#: The reply when a policy raised, ran over its time limit or returned something
#: :func:`policy_decision_check` refuses (SMTP-INJECTION.md §5.8, §5.9; Engage's text).
POLICY_FAILED = SmtpReply(451, "4.3.0", "Policy evaluation failed, please retry")

_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})
_BOOLEAN_FIELDS = ("open_tracking", "click_tracking", "transactional", "initial_open")


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What a policy sees of one DATA transaction; read-only (SMTP-INJECTION.md §5.8).

    - ``key_id``, ``key_label``: the API key the session authenticated with (never the key).
    - ``client_address``, ``client_port``: the SMTP client's IP address (text) and port.
    - ``helo``: the EHLO/HELO name as sent; ``tls_version``: e.g. ``"TLSv1.3"``, None
      without TLS.
    - ``mail_from``: the envelope sender (``""`` for ``MAIL FROM:<>``); ``rcpt_to``: the
      envelope recipients in the order given.
    - ``headers``: ``(name, value)`` for every header field of the message in order, names
      as written, values unfolded with RFC 2047 words decoded (``X-MSYS-API`` included).
    - ``msys_api``: the parsed ``X-MSYS-API`` (:data:`mailcore.msys_api.NO_HEADER` without one).
    - ``size``: the message in octets, as received.
    """

    key_id: int
    key_label: str
    client_address: str
    client_port: int | None
    helo: str | None
    tls_version: str | None
    mail_from: str
    rcpt_to: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    msys_api: MsysApi
    size: int

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (any case), or None."""
        lname = name.lower()
        return next((value for field_name, value in self.headers if field_name.lower() == lname), None)

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every value of the header ``name`` (any case), in order."""
        lname = name.lower()
        return tuple(value for field_name, value in self.headers if field_name.lower() == lname)


@dataclass(frozen=True, slots=True)
class PolicyAccept:
    """Accept the message with ``settings`` for every copy, and ``per_recipient`` settings
    (keyed by address: an envelope recipient or a cc/bcc/archive address) over them, field by
    field. A key that is no recipient of the message is ignored."""

    settings: SmtpSettings = field(default_factory=SmtpSettings)
    per_recipient: Mapping[str, SmtpSettings] = field(default_factory=dict)

    def settings_for(self, recipient: str) -> SmtpSettings:
        """The policy level for ``recipient``'s copy: its own settings over the message's
        (:func:`mailcore.smtp_settings.smtp_settings_overlay`). Call on a checked decision,
        whose keys are :func:`mailcore.msys_api.address_key` forms."""
        own = self.per_recipient.get(address_key(recipient))
        return self.settings if own is None else smtp_settings_overlay(own, self.settings)


@dataclass(frozen=True, slots=True)
class PolicyReject:
    """Refuse the message with ``reply`` (a 4xx or 5xx :class:`SmtpReply`), e.g.
    ``PolicyReject(SmtpReply(550, "5.7.1", "Sending to this domain is not allowed"))``."""

    reply: SmtpReply


#: What a policy may return.
PolicyDecision: TypeAlias = PolicyAccept | PolicyReject | SmtpSettings | None


class PolicyDecisionError(SmtpReplyError):
    """A policy's answer that cannot be used: :attr:`reply` is :data:`POLICY_FAILED` (``451
    4.3.0``), :attr:`detail` (also ``str(error)``) says what was wrong, for the log."""

    def __init__(self, detail: str) -> None:
        super().__init__(POLICY_FAILED)
        self.detail = detail
        self.args = (detail,)

    def __str__(self) -> str:
        return self.detail


def _fail(detail: str) -> NoReturn:
    raise PolicyDecisionError(detail)


def _boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    _fail(f"{name} must be a bool or '1', '0', 'true', 'false', not {value!r:.60}")


def _loaded(name: str, value: object) -> Any:
    """``value`` held to the header's JSON rules; a JSON string is parsed first."""
    try:
        return json_text_check(value) if isinstance(value, str) else json_value_check(value)
    except MsysApiError as exc:
        _fail(f"{name}: {exc.reply.text}")


def _campaign_id(value: object) -> str:
    if not isinstance(value, str):
        _fail(f"campaign_id must be a str, not {type(value).__name__}")
    problem = string_problem(value)
    if problem is not None:
        _fail(f"campaign_id {problem}")
    if len(value.encode("utf-8")) > MAX_CAMPAIGN_ID_BYTES:
        raise MsysApiError(campaign_id_reply())
    return value


def _metadata(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping | str):
        _fail(f"metadata must be a mapping or a JSON object string, not {type(value).__name__}")
    loaded = _loaded("metadata", value if isinstance(value, str) else dict(value))
    if not isinstance(loaded, dict):
        _fail("metadata must be a JSON object")
    return loaded


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = _loaded("tags", value)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        _fail(f"tags must be a sequence of str or a JSON array string, not {type(value).__name__}")
    tags = tuple(value[:MAX_TAGS])
    for tag in tags:
        if not isinstance(tag, str) or len(tag) > MAX_TAG_CHARS:
            _fail(f"tags must be str of at most {MAX_TAG_CHARS} characters, not {tag!r:.80}")
    _loaded("tags", list(tags))  # no NUL or lone surrogate
    return tags


def _tracking_domain(value: object) -> str:
    if not isinstance(value, str):
        _fail(f"tracking_domain must be a str, not {type(value).__name__}")
    try:
        return tracking_domain_normalize(value.strip())
    except ValueError as exc:
        _fail(f"tracking_domain {exc}")


def _link_expiry(value: object) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 1 <= value <= MAX_LINK_EXPIRY:
        _fail(f"link_expiry must be whole seconds from 1 to {MAX_LINK_EXPIRY}, not {value!r:.40}")
    return value


def _settings_check(where: str, settings: object) -> SmtpSettings:
    if type(settings) is not SmtpSettings:
        _fail(f"{where} must be an SmtpSettings, not {type(settings).__name__}")
    checked: dict[str, Any] = {}
    for item in fields(SmtpSettings):
        value = getattr(settings, item.name)
        if value is None:
            continue
        name = f"{where}.{item.name}"
        if item.name in _BOOLEAN_FIELDS:
            checked[item.name] = _boolean(name, value)
        elif item.name == "campaign_id":
            checked[item.name] = _campaign_id(value)
        elif item.name == "metadata":
            checked[item.name] = _metadata(value)
        elif item.name == "tags":
            checked[item.name] = _tags(value)
        elif item.name == "tracking_domain":
            checked[item.name] = _tracking_domain(value)
        elif item.name == "link_expiry":
            checked[item.name] = _link_expiry(value)
        else:  # pragma: no cover - a field added to SmtpSettings without a check here
            _fail(f"{name} has no check")
    return SmtpSettings(**checked)


def policy_decision_check(decision: object) -> PolicyAccept | PolicyReject:
    """What a policy returned (``decision``, any object), checked and in its one form.

    - ``None`` → ``PolicyAccept()`` (every field "not given").
    - an :class:`SmtpSettings` → ``PolicyAccept(settings=...)``.
    - a :class:`PolicyAccept` → the same with every value checked, booleans, metadata, tags
      and link expiry converted from Momentum's strings, the tracking domain normalized
      (:func:`mailcore.domains.tracking_domain_normalize`) and ``per_recipient`` keyed by
      :func:`mailcore.msys_api.address_key` (read-only).
    - a :class:`PolicyReject` whose reply is 4xx or 5xx → as it is.

    Values follow the header's rules (:mod:`mailcore.msys_api`): ``campaign_id`` at most 64
    bytes, ``metadata`` a JSON object, the first 10 ``tags`` kept, each at most 64
    characters; ``link_expiry`` 1 to :data:`MAX_LINK_EXPIRY` seconds.

    Raises :class:`PolicyDecisionError` (reply ``451 4.3.0``) for anything else: a wrong
    type, a malformed value. Raises :class:`mailcore.msys_api.MsysApiError` with ``550 5.6.0
    smtpapi_campaign_id context is limited to 64 bytes`` for a longer campaign id, as Momentum
    does for its context variable (SMTP-INJECTION.md §5.8).
    """
    if decision is None:
        return PolicyAccept()
    if type(decision) is SmtpSettings:
        return PolicyAccept(settings=_settings_check("settings", decision))
    if type(decision) is PolicyReject:
        reply = decision.reply
        if type(reply) is not SmtpReply:
            _fail(f"PolicyReject.reply must be an SmtpReply, not {type(reply).__name__}")
        try:
            reply = SmtpReply(reply.code, reply.enhanced, reply.text)
        except ValueError as exc:
            _fail(f"PolicyReject.reply: {exc}")
        if reply.code < 400:
            _fail(f"PolicyReject.reply must be a 4xx or 5xx reply, not {reply.code}")
        return PolicyReject(reply)
    if type(decision) is not PolicyAccept:
        _fail(f"a policy returns None, SmtpSettings, PolicyAccept or PolicyReject, not {type(decision).__name__}")
    settings = _settings_check("settings", decision.settings)
    per_recipient = decision.per_recipient
    if not isinstance(per_recipient, Mapping):
        _fail(f"per_recipient must be a mapping of address to SmtpSettings, not {type(per_recipient).__name__}")
    checked: dict[str, SmtpSettings] = {}
    for address, own in per_recipient.items():
        if not isinstance(address, str):
            _fail(f"per_recipient keys must be str addresses, not {type(address).__name__}")
        checked[address_key(address)] = _settings_check(f"per_recipient[{address[:254]!r}]", own)
    return PolicyAccept(settings=settings, per_recipient=MappingProxyType(checked))
