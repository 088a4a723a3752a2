"""Writes of the SMTP injection listener: who may inject (AUTH), and one accepted DATA
transaction stored as a transmission (SPEC A.4, B §9; SMTP-INJECTION.md §5.3, §5.5, §5.6).

An injected message becomes an ``email_rfc822`` transmission prepared by
``transmissions.services.transmission_prepare``: the transmission, the raw message and one
message row per recipient are committed in one statement (with other sessions' messages:
``transmissions.services.transmissions_insert_group``), generation is queued after the
commit, and a transmission whose enqueue was lost (Redis down, a crash) is started by the
scheduler (``transmissions_due``). So sending, tracking, events, metrics, webhooks and the
report treat it like a REST transmission. Everything here is synchronous Django code: the
listener prepares a message on its loop (no I/O) and stores groups in a thread.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from psycopg import AsyncConnection

from api_keys.selectors import api_key_get_active, api_key_grants_if_active
from engage import errors
from mailcore.headers import BLIND_HEADERS, HeaderError, header_line
from mailcore.memo import KeptForShortValues
from mailcore.msys_api import (
    READ_FIELDS,
    CopyType,
    MsysApi,
    MsysApiError,
    copy_recipients,
    envelope_recipients,
    msys_api_parse,
)
from mailcore.smtp_policy import PolicyAccept, PolicyDecisionError, PolicyView
from mailcore.smtp_reply import SmtpReply, reply_text
from mailcore.smtp_settings import HeaderSettings, ResolvedSmtpSettings, SmtpSettings, smtp_settings_resolve
from smtp_injection.message import data_problem, head_fields, head_split, header_names, header_remove, header_values
from transmissions.models import TransmissionSource
from transmissions.services import (
    PreparedTransmission,
    StoreConnection,
    transmission_prepare,
    transmissions_generation_enqueue,
    transmissions_insert_group,
    transmissions_insert_group_async,
    transmissions_store_connect,
)

log = logging.getLogger(__name__)

#: The AUTH user name SparkPost documents (SPEC B §9.3), compared without case.
SMTP_USERNAME = "SMTP_Injection"
#: The grant a key needs to inject (SPEC B §10, "Send via SMTP").
SMTP_GRANT = "smtp/inject"
#: The header read and removed before the message is stored (SPEC A.4).
MSYS_API_HEADER = "X-MSYS-API"

_SUBACCOUNT = re.compile(r":x-msys-subaccount=(\d+)", re.IGNORECASE)
# What may appear of client- or operator-chosen text inside a Received comment (RFC 5322
# §3.2.2: ctext, and "(", ")" and "\" as quoted-pairs): anything else becomes "?".
_UNSAFE_COMMENT = re.compile(r"[^\x21-\x7e ]")
_COMMENT_QUOTED = re.compile(r"([()\\])")
_UNSAFE_DOMAIN = re.compile(r"[^A-Za-z0-9.\-:\[\]]")


@dataclass(frozen=True, slots=True)
class SmtpPrincipal:
    """An authenticated injection session's key: its id and label (never the key)."""

    key_id: int
    label: str


@dataclass(frozen=True, slots=True)
class Injection:
    """One DATA transaction as the listener saw it. ``data`` is the message as received
    (CRLF line ends, dot-stuffing undone); ``listener_hostname`` the name the listener
    greets with; ``client_address`` the peer's IP address."""

    principal: SmtpPrincipal
    listener_hostname: str
    client_address: str
    helo: str
    tls: bool
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    client_port: int | None = None
    tls_version: str | None = None


class SmtpRefusal(Exception):
    """The message is refused for good; ``reply`` is the whole SMTP reply line
    (``"550 5.6.0 ..."``), built through ``mailcore.smtp_reply.SmtpReply`` (a reply line given
    as text is split into its code, enhanced code and text, the text made printable ASCII)."""

    def __init__(self, reply: str | SmtpReply) -> None:
        if isinstance(reply, str):
            code, enhanced, text = reply.split(" ", 2)
            reply = SmtpReply(int(code), enhanced, reply_text(text))
        super().__init__(reply.line())
        self.reply = reply.line()


def smtp_principal_authenticate(*, username: str, password: str) -> SmtpPrincipal | None:
    """The key an AUTH PLAIN / LOGIN exchange names, or None (the listener answers
    ``535 5.7.8``).

    ``username`` must be ``SMTP_Injection`` (any case), optionally with
    ``:X-MSYS-SUBACCOUNT=0``; another subaccount is refused (no subaccounts yet,
    SMTP-INJECTION.md "Decisions"). ``password`` is an API key, looked up hashed by the same
    selector as REST's ``Authorization`` (``api_keys.selectors.api_key_get_active``); it must
    be unrevoked and hold ``smtp/inject``. A valid key without that grant is logged at WARNING
    with its label and prefix (never the key), so the operator can tell it from a wrong key;
    every other refusal at INFO, saying which (never the password).
    """
    user, _, rest = username.partition(":")
    if user.lower() != SMTP_USERNAME.lower():
        log.info("smtp: AUTH refused: the user is %r, not %s", username[:64], SMTP_USERNAME)
        return None
    if rest:
        match = _SUBACCOUNT.fullmatch(":" + rest)
        if match is None or int(match.group(1)) != 0:
            log.info("smtp: AUTH refused: %r names a subaccount other than 0 (none exist)", username[:64])
            return None
    if not password or len(password) > 1024:
        log.info("smtp: AUTH refused: the password (an API key) is empty or over 1024 characters")
        return None
    key = api_key_get_active(raw_key=password)
    if key is None:
        log.info("smtp: AUTH refused: no API key matches the password (unknown or revoked)")
        return None
    if SMTP_GRANT not in key.grants:
        # The client hears only 535 5.7.8, as for a wrong key; the operator learns why here.
        log.warning("smtp: AUTH refused: API key %r (prefix %s) lacks the %s grant", key.label, key.prefix, SMTP_GRANT)
        return None
    return SmtpPrincipal(key_id=key.pk, label=key.label)


def smtp_principal_check(*, principal: SmtpPrincipal) -> bool:
    """Whether the key a session authenticated with is still unrevoked and holds
    ``smtp/inject``: the listener asks at each MAIL FROM, so a key revoked mid-session stops
    sending (``530 5.7.0``, the client must AUTH again)."""
    grants = api_key_grants_if_active(key_id=principal.key_id)
    return grants is not None and SMTP_GRANT in grants


def smtp_policy_load(path: str) -> Callable[[PolicyView], object] | None:
    """The callable ``ENGAGE_SMTP_POLICY`` names (``"package.module.function"``), or None for
    ``""``. Raises ``ImportError`` when it cannot be imported and ``TypeError`` when what it
    names cannot be called: the listener refuses to start (SMTP-INJECTION.md §5.8)."""
    if not path:
        return None
    policy = import_string(path)
    if not callable(policy):
        raise TypeError(f"ENGAGE_SMTP_POLICY {path!r} names a {type(policy).__name__}, not a callable")
    return policy


def _comment_text(value: str, limit: int = 64) -> str:
    """``value`` cut to ``limit`` characters, as the text of a comment: printable ASCII kept,
    ``(``, ``)`` and ``\\`` as quoted-pairs (``\\(``), anything else ``?``."""
    return _COMMENT_QUOTED.sub(r"\\\1", _UNSAFE_COMMENT.sub("?", value[:limit]))


def received_line(*, injection: Injection, now: datetime) -> bytes:
    """The ``Received:`` field Engage prepends (RFC 5321 §4.4; ``ESMTPSA`` / ``ESMTPA`` of
    RFC 3848): the client's HELO and address, the listener's name and the key's label in a
    comment (never the key), through ``mailcore.headers.header_line`` (no line break from
    data). LF line end.

    Made once per session and second: one client's messages in one second share it (their
    date has no finer unit), and building it (three escapes, the date, the folding) was a
    tenth of the listener's work on each message (``bench/smtp_injection.py``'s messages;
    bench/RESULTS.md, "Session 20")."""
    return _received_line(
        injection.helo, injection.client_address, injection.listener_hostname, injection.principal.label,
        injection.tls, now.replace(microsecond=0),
    )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _received_line(helo: str, client_address: str, hostname: str, label: str, tls: bool, now: datetime) -> bytes:
    """:func:`received_line` of these values (each bounded: a HELO and a label as the listener
    reads them, the others the listener's own)."""
    value = (
        f"from {_UNSAFE_DOMAIN.sub('?', helo)[:255] or 'unknown'} ([{_UNSAFE_DOMAIN.sub('?', client_address)}]) "
        f"by {_UNSAFE_DOMAIN.sub('?', hostname)[:255]} (Engage; key {_comment_text(label)}) "
        f"with {'ESMTPSA' if tls else 'ESMTPA'}; {format_datetime(now)}"
    )
    return header_line("Received", value)


#: The settings of a resolved message that a transmission holds once for all its copies: a
#: policy may not give one recipient a value of these that differs from the message's.
TRANSMISSION_FIELDS = ("campaign_id", "open_tracking", "click_tracking", "transactional", "initial_open",
                       "tracking_domain")  # fmt: skip
_link_expiry_warned = False


def _listener_settings() -> SmtpSettings:
    return SmtpSettings(
        open_tracking=settings.ENGAGE_SMTP_OPEN_TRACKING, click_tracking=settings.ENGAGE_SMTP_CLICK_TRACKING
    )


def _warn_link_expiry(resolved: ResolvedSmtpSettings) -> None:
    """``link_expiry`` has no place on a transmission yet: say so once per process rather
    than drop it without a word (docs/smtp-injection.md, "Policy")."""
    global _link_expiry_warned
    if resolved.link_expiry is not None and not _link_expiry_warned:
        _link_expiry_warned = True
        log.warning(
            "smtp injection: the policy set link_expiry=%s, which Engage does not apply yet (a transmission "
            "has no link expiry of its own); ENGAGE_TRACKING_LINK_EXPIRY applies. Logged once per process.",
            resolved.link_expiry,
        )


def smtp_message_read(injection: Injection) -> MsysApi:
    """The message's ``X-MSYS-API`` header, parsed (``mailcore.msys_api.msys_api_parse``;
    ``NO_HEADER`` without one). Pure work on the header block, no database.

    Raises :class:`SmtpRefusal` with the header's ``550 5.6.0`` reply when it is malformed
    or repeated (SPEC B §9.1; SMTP-INJECTION.md §1.4, §5.9), and ``554 5.6.0`` for data no
    field can be read from safely or that cannot be stored
    (``smtp_injection.message.data_problem``: a NUL byte, a bare CR or LF in the header).
    """
    problem = data_problem(injection.data)
    if problem is not None:
        raise SmtpRefusal(f"554 5.6.0 {problem}")
    head, _rest = head_split(injection.data)
    values = header_values(head, MSYS_API_HEADER)
    try:
        api = _msys_api_cached(tuple(values))
    except MsysApiError as exc:
        raise SmtpRefusal(exc.reply.line()) from None
    if api.ignored:
        _warn_ignored(injection.principal, api.ignored)
    return api


#: An ``X-MSYS-API`` value up to this many characters is parsed once per distinct value (the
#: last 64 kept): an application sends the same header on many messages (a campaign's id,
#: metadata and tags).
MSYS_API_CACHED_CHARS = 4096

#: ``mailcore.msys_api.msys_api_parse`` of a header's values, kept (an ``MsysApi`` is immutable;
#: a refused value raises each time, nothing is kept for it). Its parse was a tenth of the
#: listener's work on each message (bench/RESULTS.md, "Session 20").
_msys_api_cached = KeptForShortValues(msys_api_parse, maxsize=64, max_chars=MSYS_API_CACHED_CHARS)


_ignored_warned: set[tuple[int, tuple[str, ...]]] = set()


def _warn_ignored(principal: SmtpPrincipal, ignored: tuple[str, ...]) -> None:
    """A field of ``X-MSYS-API`` nothing reads (a misspelt ``campaign``; ``tracking_domain``,
    which only a policy sets) is accepted, as SparkPost does, but said in the log: once per
    key and set of fields per process, so an application that always sends one does not
    flood it."""
    if (principal.key_id, ignored) in _ignored_warned or len(_ignored_warned) > 10_000:
        return
    _ignored_warned.add((principal.key_id, ignored))
    log.warning(
        "smtp injection: X-MSYS-API field(s) %s from key %r ignored (read: %s; tracking_domain only "
        "from ENGAGE_SMTP_POLICY); logged once per key and fields",
        ", ".join(repr(name) for name in ignored), principal.label, ", ".join(sorted(READ_FIELDS)),
    )  # fmt: skip


def smtp_policy_view(*, injection: Injection, api: MsysApi) -> PolicyView:
    """What the policy sees of ``injection`` (``mailcore.smtp_policy.PolicyView``): the key's
    id and label (never the key), the client, the envelope, every header field unfolded with
    RFC 2047 words decoded (``smtp_injection.message.head_fields``), the parsed header and
    the size in octets."""
    head, _rest = head_split(injection.data)
    return PolicyView(
        key_id=injection.principal.key_id,
        key_label=injection.principal.label,
        client_address=injection.client_address,
        client_port=injection.client_port,
        helo=injection.helo or None,
        tls_version=injection.tls_version,
        mail_from=injection.mail_from,
        rcpt_to=injection.rcpt_tos,
        headers=head_fields(head),
        msys_api=api,
        size=len(injection.data),
    )


#: One final recipient: ``((name, email), its copy type or None for an envelope recipient, settings)``.
_Resolved = tuple[tuple[str, str], CopyType | None, ResolvedSmtpSettings]


def _resolve(injection: Injection, api: MsysApi, policy: PolicyAccept) -> tuple[ResolvedSmtpSettings, list[_Resolved]]:
    """The message's settings and each final recipient's ``((name, email), kind, settings)``, by the
    one SMTP precedence rule (``mailcore.smtp_settings.smtp_settings_resolve``: policy >
    header > listener, a policy's per-recipient settings over its per-message ones).

    Envelope recipients come first, each once (``mailcore.msys_api.envelope_recipients``), then
    the ``cc`` / ``bcc`` / ``archive`` addresses not already one
    (``mailcore.msys_api.copy_recipients``, SMTP-INJECTION.md §1.6).

    Raises :class:`mailcore.smtp_policy.PolicyDecisionError` (``451 4.3.0``) when the policy
    gives one recipient a :data:`TRANSMISSION_FIELDS` value other than the message's: one
    transmission holds one of each, and splitting a DATA transaction into several
    transmissions is not done yet (docs/smtp-injection.md, "Policy").
    """
    header, listener = HeaderSettings.from_msys_api(api), _listener_settings()
    message = smtp_settings_resolve(policy.settings, header, listener)
    _warn_link_expiry(message)
    envelope = envelope_recipients(injection.rcpt_tos)
    addresses: list[tuple[tuple[str, str], CopyType | None]] = [(("", rcpt), None) for rcpt in envelope]
    addresses += copy_recipients(envelope, api)
    resolved: list[_Resolved] = []
    for (name, email), kind in addresses:
        own = message
        if policy.per_recipient:
            own = smtp_settings_resolve(policy.settings_for(email), header, listener)
            for field_name in TRANSMISSION_FIELDS:
                if getattr(own, field_name) != getattr(message, field_name):
                    raise PolicyDecisionError(
                        f"per_recipient[{email[:254]!r}].{field_name} differs from the message's; per recipient "
                        "a policy may set metadata and tags only (one transmission per DATA)"
                    )
            _warn_link_expiry(own)
        resolved.append(((name, email), kind, own))
    return message, resolved


def _options(api: MsysApi, resolved: ResolvedSmtpSettings) -> dict[str, Any]:
    """The transmission's ``options``: the resolved tracking and transactional flags, the
    header's ``inline_css``, ``sandbox``, ``skip_suppression`` and ``ip_pool`` when given
    with the right type, no substitution (SPEC A.4)."""
    options: dict[str, Any] = {
        "open_tracking": resolved.open_tracking,
        "click_tracking": resolved.click_tracking,
        "initial_open": resolved.initial_open,
        "transactional": resolved.transactional,
        "perform_substitutions": False,
    }
    if api.options.inline_css is not None:
        options["inline_css"] = api.options.inline_css
    other = api.options.other
    for name in ("sandbox", "skip_suppression"):
        if isinstance(other.get(name), bool):
            options[name] = other[name]
    if isinstance(other.get("ip_pool"), str):
        options["ip_pool"] = other["ip_pool"]
    return options


def _reply_text(text: str, limit: int = 200) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]


def _check_head(head: bytes) -> None:
    """What makes a message unsendable and is cheap to see at the dot: no header field, or a
    ``Bcc`` / ``Resent-Bcc`` field every copy would show (``mailcore.headers.BLIND_HEADERS``;
    the per-copy ``Bcc`` is Engage's). The body is not parsed here: generation compiles the
    message once, and a structure it cannot use fails each copy with its
    ``generation_failure`` (SMTP-INJECTION.md §5.5). Raises :class:`SmtpRefusal` (``554 5.6.0``)."""
    names = header_names(head)
    if not names:
        raise SmtpRefusal("554 5.6.0 the message has no header fields")
    if names & BLIND_HEADERS:
        raise SmtpRefusal(
            "554 5.6.0 the message has a Bcc header, which every recipient would see (RFC 5322 section 3.6.3); "
            "give blind copies as RCPT TO or X-MSYS-API bcc"
        )


def _message_source(injection: Injection, api: MsysApi, *, now: datetime) -> str:
    """The stored ``email_rfc822``: a ``Received:`` field first, no ``X-MSYS-API``, and a
    ``Cc:`` listing the header's ``cc`` addresses when it has any (SPEC B §9.1)."""
    head, rest = head_split(injection.data)
    _check_head(head)
    head = header_remove(head, MSYS_API_HEADER)
    extra = received_line(injection=injection, now=now)
    if api.cc:
        head = header_remove(head, "Cc")
        extra += header_line("Cc", list(api.cc))
    if b"\r\n" in head[:1000]:
        extra = extra.replace(b"\n", b"\r\n")
    try:
        return (extra + head + rest).decode("utf-8")
    except UnicodeDecodeError:
        # email_rfc822 is stored as text: 8-bit data in another charset would be altered.
        raise SmtpRefusal(
            "554 5.6.0 8-bit message data must be UTF-8; send other charsets quoted-printable or base64"
        ) from None


def _recipients(message: ResolvedSmtpSettings, resolved: list[_Resolved]) -> list[dict[str, Any]]:
    """The transmission's recipients: each with its tags, its ``rcpt_type`` when it is a
    ``cc`` / ``bcc`` / ``archive`` copy, and its own metadata when the policy gave it other
    metadata than the message's (events then carry the transmission's metadata with the
    recipient's over it, the REST rule)."""
    recipients: list[dict[str, Any]] = []
    for (name, email), kind, own in resolved:
        recipient: dict[str, Any] = {"address": {"email": email, **({"name": name} if name else {})},
                                     "tags": list(own.tags)}  # fmt: skip
        if kind is not None:
            recipient["rcpt_type"] = kind
        if own.metadata != message.metadata:
            recipient["metadata"] = dict(own.metadata)
        recipients.append(recipient)
    return recipients


def smtp_message_prepare(
    *,
    injection: Injection,
    api: MsysApi | None = None,
    policy: PolicyAccept | None = None,
    now: datetime | None = None,
) -> PreparedTransmission:
    """One injected message as a transmission ready to store
    (``transmissions.services.transmission_prepare``; nothing is written, no database is read):
    the header removed, a ``Received:`` line added, the campaign, metadata, tags, options and
    tracking domain that :func:`_resolve` gives, the return path from MAIL FROM.

    ``api`` is the parsed ``X-MSYS-API`` (:func:`smtp_message_read`; read here when None),
    ``policy`` the checked answer of ``ENGAGE_SMTP_POLICY``
    (``mailcore.smtp_policy.policy_decision_check``; None: no policy).

    Raises :class:`SmtpRefusal` for a message refused for good (a bad header: its
    ``550 5.6.0`` reply; a message Engage cannot store: ``554 5.6.0``);
    ``mailcore.smtp_policy.PolicyDecisionError`` (``451 4.3.0``) for a per-recipient policy
    answer one transmission cannot hold (:func:`_resolve`).
    """
    now = now or timezone.now()
    if api is None:
        api = smtp_message_read(injection)
    try:
        source = _message_source(injection, api, now=now)
    except HeaderError as exc:
        raise SmtpRefusal(f"554 5.6.0 {_reply_text(str(exc))}") from None
    resolved, per_recipient = _resolve(injection, api, policy or PolicyAccept())
    body: dict[str, Any] = {
        "campaign_id": resolved.campaign_id or "",
        "metadata": dict(resolved.metadata),
        "options": _options(api, resolved),
        "return_path": injection.mail_from,
        "content": {"email_rfc822": source},
        "recipients": _recipients(resolved, per_recipient),
    }
    if resolved.tracking_domain:
        body["tracking_domain"] = resolved.tracking_domain
    try:
        prepared = transmission_prepare(body=body, max_rcpt_errors=1, now=now, source=TransmissionSource.SMTP)
    except errors.EngageError as exc:
        raise SmtpRefusal(f"554 5.6.0 {_reply_text(exc.description or exc.message)}") from None
    if prepared.rejected:
        log.warning(
            "smtp injection: a message from %s is stored without %d recipient(s): %s",
            injection.client_address, prepared.rejected, prepared.rcpt_errors,
        )  # fmt: skip
    return prepared


def smtp_messages_store(*, prepared: Sequence[PreparedTransmission]) -> list[int]:
    """Store prepared messages (:func:`smtp_message_prepare`) of one or several sessions in
    one statement and one commit (``transmissions.services.transmissions_insert_group``);
    returns their transmission ids in order, for the ``250`` replies. Any exception
    (``django.db.DatabaseError``...) means none was stored: the listener answers each
    ``451 4.3.0``."""
    return transmissions_insert_group(prepared=prepared)


async def smtp_messages_store_async(
    *, database: AsyncConnection[Any], prepared: Sequence[PreparedTransmission], deadline: datetime | None = None
) -> list[int]:
    """:func:`smtp_messages_store` on the listener's asyncio connection
    (:func:`smtp_store_connect`; ``transmissions.services.transmissions_insert_group_async``):
    the same statement and commit, the ids in order. ``deadline``, in the server's clock
    (``StoreConnection.server_time``): not stored when the server begins the statement
    later. Raises ``psycopg.Error`` or ``GroupDeadlinePassed``: none stored."""
    return await transmissions_insert_group_async(database=database, prepared=prepared, deadline=deadline)


async def smtp_store_connect() -> StoreConnection:
    """The listener's asyncio database connection for :func:`smtp_messages_store_async`, with
    the server's clock offset (``transmissions.services.transmissions_store_connect``).
    Raises ``psycopg.Error``."""
    return await transmissions_store_connect()


def smtp_message_accept(
    *,
    injection: Injection,
    api: MsysApi | None = None,
    policy: PolicyAccept | None = None,
    now: datetime | None = None,
    enqueue: bool = True,
) -> int:
    """Store one injected message as a transmission (:func:`smtp_message_prepare`, then
    :func:`smtp_messages_store` with a group of one); returns its id for the ``250`` reply.
    Returns only once the statement committed; generation is queued after it (or left to the
    scheduler when the broker is down); with ``enqueue=False`` the caller queues it
    (``transmissions.services.transmissions_generation_enqueue``) or the scheduler starts it.
    The listener itself prepares on its loop and stores the messages of concurrent sessions
    together (``smtp_injection.server.GroupStore``).

    Raises what :func:`smtp_message_prepare` and :func:`smtp_messages_store` raise.
    """
    prepared = smtp_message_prepare(injection=injection, api=api, policy=policy, now=now)
    (transmission_id,) = smtp_messages_store(prepared=[prepared])
    if enqueue:
        transaction.on_commit(lambda: transmissions_generation_enqueue(transmission_ids=[transmission_id]))
    return transmission_id
