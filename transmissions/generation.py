"""Turn one stored recipient into one ready-to-send message.

``PreparedTransmission`` holds everything shared by the messages of a transmission: the content
compiled ONCE (cached per process by transmission id and template version), the effective
options, the tracking base URL and the fields every event carries. A stored template is
compiled from the snapshot the transmission took when it started generating (its
``template_snapshot``, see ``transmissions.services.transmission_start_generation``), never
from the template as it is now, so every process sends the same version and labels it
with that version's number. ``message_generate``
then does the per-recipient work: data context → render (links and pixels through a
:class:`MessageTracker`) → optional CSS inlining → MIME bytes.

``email_rfc822`` content is split and compiled once as well (``mailcore.rfc822``): per
recipient its substituted headers and text/html parts are rendered with the same tracker
and joined with the untouched bytes of the source.

``perform_substitutions: false`` (SPEC B §1.2) sends the text, html and AMP bodies as
written (still click and open tracked); headers are still substituted, except an SMTP
injection's, which go as written (SPEC A.4: no substitution).

Tracking consent (SPEC A.5) is decided per recipient in :func:`message_generate`
(``mailcore.consent.tracking_consented``: a register ``denied`` > the recipient object's
``tracking_consent`` > the register > ``ENGAGE_TRACKING_CONSENT_DEFAULT``); the register is read once per claimed batch
(:func:`registered_consent`). A recipient who did not consent gets the parts tracking off
would give (no pixel, links exactly as written); a non-transactional message keeps its
List-Unsubscribe headers, whose token then carries no metadata and no tags. An SMTP
``archive`` copy replicates another recipient's copy (SMTP-INJECTION.md §1.6), so it is
tracked only when both that recipient and the archive recipient consent.
"""

from __future__ import annotations

import html as html_lib
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings

from consent.selectors import consent_among
from engage import errors
from mailcore.address_templates import AddressTemplate, compile_addresses
from mailcore.addresses import address_problem, mailbox_key
from mailcore.consent import tracking_consented
from mailcore.domains import list_unsubscribe_uri_problem
from mailcore.headers import HeaderError, envelope_address, header_block, own_bcc_line
from mailcore.language import CompiledPart, build_context, compile_content, compile_part
from mailcore.language.errors import TemplateRenderError, TemplateSyntaxError
from mailcore.links import pixel_html, scan_html, scan_text
from mailcore.memo import KeptForShortValues, characters
from mailcore.mime import build_message, from_parts, to_addresses
from mailcore.options import EffectiveOptions, effective_options
from mailcore.rfc822 import CompiledMessage, LiteralPart, Rfc822Error, compile_message
from mailcore.tokens import MessageTokens
from templates_app.selectors import template_get_for_send
from tracking.signing import tracking_base_url, tracking_signer
from transmissions.models import Transmission, TransmissionSource
from transmissions.payload import address_headers, content_to_compile
from transmissions.selectors import template_id_of

log = logging.getLogger(__name__)

__all__ = [
    "GenerationFailed",
    "MessageTracker",
    "PreparedTransmission",
    "GeneratedMessage",
    "message_generate",
    "prepared_for",
    "prepared_cache_clear",
    "prepared_get",
    "registered_consent",
    "registered_consent_group",
]

#: The prepared transmissions a process keeps (:func:`prepared_for`): the last 32, holding
#: at most 64 Mi characters of content between them (:attr:`PreparedTransmission.size`; a
#: content is up to ``ENGAGE_MAX_REQUEST_BYTES``, 50 MiB, and 32 of those held gigabytes in
#: each worker process). The one just prepared is kept whatever its size.
_CACHE_SIZE = 32
_CACHE_CHARS = 64 * 1024 * 1024
_cache: OrderedDict[tuple[int, str], PreparedTransmission] = OrderedDict()


class GenerationFailed(Exception):
    """The message cannot be generated for this recipient (render error): a
    ``generation_failure`` event, the other recipients carry on."""

    def __init__(self, reason: str, *, part: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.part = part


def _sublink_path_made(sublink: str) -> str:
    """A ``data-msys-sublink`` as URL path segments: percent-encoded (RFC 3986 §2.1), ``/``
    kept, so no quote, space or control character of the attribute reaches the URL."""
    return quote(sublink, safe="/")


#: :func:`_sublink_path_made`, kept for the last 1,024 sublinks of up to 256 characters: an
#: attribute is bounded only by the content's size (1,024 kept sublinks of megabytes each held
#: gigabytes in every worker process).
_sublink_path = KeptForShortValues(_sublink_path_made, maxsize=1024, max_chars=256)


class MessageTracker:
    """The tracking hooks of one message (the ``Tracker`` protocol of the language).

    A tracked URL goes into an HTML attribute escaped (``span.html``: ``html.escape``) and
    into text as is; its base was checked once per transmission
    (``mailcore.domains.tracking_domain_normalize``), its token is base64url and its sublink
    percent-encoded, so the escaping changes nothing unless something upstream went wrong."""

    __slots__ = ("_base", "_base_html", "_tokens", "_click", "_open", "_initial_open")

    def __init__(
        self, *, base_url: str, tokens: MessageTokens | None, options: EffectiveOptions, consented: bool = True
    ) -> None:
        self._base = base_url
        self._base_html = html_lib.escape(base_url)
        self._tokens = tokens
        tracked = consented and tokens is not None  # no consent: as with open and click tracking off
        self._click = options.click_tracking and tracked
        self._open = options.open_tracking and tracked
        self._initial_open = options.initial_open and tracked

    def link(self, url: str, span: Any) -> str | None:
        if not self._click:
            return None  # the link stays exactly as written
        assert self._tokens is not None  # tracking is on only with tokens
        token = self._tokens.click(
            url, span.name, unsubscribe=span.unsubscribe, position=span.position, written=span.written
        )
        base = self._base_html if span.html else self._base
        if span.sublink:
            sublink = _sublink_path(span.sublink)
            return f"{base}/f/{html_lib.escape(sublink) if span.html else sublink}/{token}"
        return f"{base}/f/{token}"

    def pixel(self, kind: str) -> str:
        if kind == "open" and self._open:
            assert self._tokens is not None  # tracking is on only with tokens
            return pixel_html(f"{self._base}/q/{self._tokens.open('open')}")
        if kind == "initial_open" and self._initial_open:
            assert self._tokens is not None
            return pixel_html(f"{self._base}/q/{self._tokens.open('initial_open')}")
        return ""

    def compile_dynamic(self, source: str, mode: str) -> CompiledPart:
        """A ``dynamic_html`` / ``dynamic_plain`` chunk, link-scanned like the template so its
        links are tracked by the same rules (SPEC B §4.5); the part caches it per chunk."""
        scan = scan_text(source) if mode == "text" else scan_html(source)
        return compile_part(source, part="dynamic", mode=mode, scan=scan)


@dataclass(slots=True)
class PreparedTransmission:
    """What every message of one transmission shares, made once per process by
    :func:`prepared_for`: the compiled content, the effective options, the tracking base
    URL and the fields every event carries."""

    transmission_id: int
    campaign_id: str
    template_id: str  # "inline" for inline content (SPEC B §6.2)
    template_version: str
    return_path: str
    metadata: dict[str, Any]
    substitution_data: dict[str, Any] | None
    options: EffectiveOptions
    inline_css: bool
    base_url: str
    compiled: Any  # CompiledContent, or a CompiledMessage for email_rfc822
    content: dict[str, Any]
    rfc822: bool
    unsubscribe_mailto: str
    extras: dict[str, Any] = field(default_factory=dict)
    #: Why ``base_url`` cannot be used (a ``tracking_domain`` stored before the API checked
    #: it), or ""; every message that needs a tracked URL then fails alone with this reason.
    base_url_problem: str = ""
    #: Reply-To and the address headers of ``content.headers``, parsed before substitution
    #: (``mailcore.address_templates``), by the header name they are written under.
    addresses: dict[str, AddressTemplate] = field(default_factory=dict)
    from_templated: bool = False
    source: str = TransmissionSource.API
    #: The transmission's own ``options.skip_suppression`` (REST or X-MSYS-API, never a
    #: template's, SPEC A.5): only ``Compliance`` entries are checked.
    skip_suppression: bool = False
    #: An SMTP injection's ``injection`` event time: when the listener stored it (its ``250``;
    #: the transmission's ``created_at``, aware UTC), not when a worker handed it to the relay,
    #: which a backlog puts minutes later ("Message is received by or injected into
    #: SparkPost", SMTP-INJECTION.md §1.7). None for REST: a message is injected as it is
    #: generated.
    received_at: datetime | None = None
    #: Characters of the content it was compiled from (every string in it: parts, headers,
    #: attachments: ``mailcore.memo.characters``), what :func:`prepared_for`'s cache counts against
    #: ``_CACHE_CHARS``.
    size: int = 0


def _content_and_options(transmission: Transmission) -> tuple[dict, dict | None, str]:
    """``(content, template options or None, template version)`` the transmission compiles.

    Inline content is the row's own (no template options, no version). A stored template is
    the row's ``template_snapshot``, taken once when generation started; a template that could
    not be loaded then raises the same ``EngageError`` now (NotFound, NoDraftTemplate,
    NoPublishedTemplate), so each message fails with that reason. A transmission started
    before migration 0005 has no snapshot and reads the template as it is now, as it did then
    (its messages may then send a later version than ``template_version`` names).
    """
    if not transmission.template_id:
        return transmission.content, None, ""
    snapshot = transmission.template_snapshot
    if snapshot is not None:
        if "error" in snapshot:
            raise _template_error(snapshot["error"])
        return snapshot["content"], snapshot["options"], transmission.template_version
    content, options, version = template_get_for_send(
        template_id=transmission.template_id, use_draft=transmission.use_draft_template
    )
    return content, options, str(version)


def _template_error(error: dict[str, Any]) -> errors.EngageError:
    """The ``EngageError`` recorded in a snapshot (``{"type": class name, "description"}``)."""
    cls = getattr(errors, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.EngageError)):
        cls = errors.EngageError
    return cls(str(error.get("description") or "") or None)


def prepare(transmission: Transmission) -> PreparedTransmission:
    """Compile the content and resolve the options of a transmission (no cache).

    The content comes from :func:`_content_and_options` (a stored template: its snapshot).
    Raises ``EngageError``: the template could not be loaded when generation started,
    TemplateSyntaxError (422 / 3000), or InvalidData (an ``email_rfc822`` or a header that
    cannot be used); the caller fails every message of the transmission with it.
    """
    content, template_options, version = _content_and_options(transmission)
    options = effective_options(
        transmission=transmission.options,
        template=template_options,
        defaults={"open_tracking": settings.ENGAGE_OPEN_TRACKING, "click_tracking": settings.ENGAGE_CLICK_TRACKING},
    )
    rfc822 = "email_rfc822" in content
    substitute = transmission.options.get("perform_substitutions") is not False
    addresses: dict[str, AddressTemplate] = {}
    try:
        if not rfc822:
            addresses = {name: compile_addresses(name, value) for name, value in address_headers(content, _OWN_HEADERS)}
        if rfc822:
            compiled: Any = compile_message(
                content["email_rfc822"], substitute=substitute,
                substitute_headers=transmission.source != TransmissionSource.SMTP,
            )  # fmt: skip
        else:
            compiled = compile_content(
                content_to_compile(content, substitute=substitute), scan_html=scan_html, scan_text=scan_text
            )
            if not substitute:
                _bodies_literal(compiled, content)
    except TemplateSyntaxError as exc:
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None
    except Rfc822Error as exc:
        raise errors.InvalidData(f"content.email_rfc822 is not a MIME message: {exc}") from None
    except HeaderError as exc:  # stored before the API checked it: the transmission fails whole
        raise errors.InvalidData(str(exc)) from None
    base_url_problem = ""
    try:
        base_url = tracking_base_url(transmission.tracking_domain or None)
    except ValueError as exc:
        base_url = ""
        base_url_problem = f"tracking_domain {transmission.tracking_domain[:100]!r} cannot be used: {exc}"
    mailto = settings.ENGAGE_LIST_UNSUBSCRIBE_MAILTO or _default_mailto(base_url)
    template_id, template_version = event_template(transmission, version=version)
    return PreparedTransmission(
        transmission_id=transmission.id,
        campaign_id=transmission.campaign_id,
        template_id=template_id,
        template_version=template_version,
        return_path=transmission.return_path,
        metadata=transmission.metadata or {},
        substitution_data=transmission.substitution_data,
        options=options,
        inline_css=bool(transmission.options.get("inline_css")),
        base_url=base_url,
        compiled=compiled,
        content=content,
        rfc822=rfc822,
        unsubscribe_mailto=mailto,
        base_url_problem=base_url_problem,
        addresses=addresses,
        from_templated=not rfc822 and "{{" in str((content.get("from") or {}).get("email", "")),
        source=transmission.source,
        skip_suppression=bool((transmission.options or {}).get("skip_suppression")),
        received_at=_received_at(transmission),
        size=characters(content),
    )


def _received_at(transmission: Transmission) -> datetime | None:
    """:attr:`PreparedTransmission.received_at` of ``transmission``."""
    created = transmission.created_at
    if transmission.source != TransmissionSource.SMTP or not isinstance(created, datetime):
        return None
    return created.astimezone(UTC)


def event_template(transmission: Transmission, *, version: str = "") -> tuple[str, str]:
    """``(template_id, template_version)`` that the transmission's events and tracking tokens
    carry: ``("smtp_<id>", "0")`` for an SMTP injection (SparkPost's real events,
    SMTP-INJECTION.md §1.7, §5.6), the stored template's id and pinned version (else
    ``version``), or ``("inline", "")`` for inline content (SPEC B §6.2)."""
    if transmission.source == TransmissionSource.SMTP:
        return template_id_of(transmission), "0"
    return template_id_of(transmission), transmission.template_version or version


def _default_mailto(base_url: str) -> str:
    """``unsubscribe@<tracking host>``; an IP address as a domain literal (RFC 5321 §4.1.3)."""
    host = urlsplit(base_url).hostname or "localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"unsubscribe@{host}"
    return f"unsubscribe@[{'IPv6:' if address.version == 6 else ''}{address}]"


def _bodies_literal(compiled: Any, content: dict[str, Any]) -> None:
    """``perform_substitutions: false``: the bodies as written, tracked as compiled ones are."""
    if content.get("text") is not None:
        compiled.text = LiteralPart(content["text"], part="text", html=False, scan=scan_text(content["text"]))
    if content.get("html") is not None:
        compiled.html = LiteralPart(content["html"], part="html", html=True, scan=scan_html(content["html"]))
    if content.get("amp_html") is not None:
        compiled.amp_html = LiteralPart(content["amp_html"], part="amp_html", html=True)


def prepared_cache_clear() -> None:
    """Forget every transmission :func:`prepared_for` compiled in this process (tests: a
    test database restarts its ids, production never does)."""
    _cache.clear()


def prepared_get(*, transmission_id: int) -> PreparedTransmission | None:
    """The prepared transmission (see :func:`prepared_for`); None when it does not exist."""
    transmission = Transmission.objects.filter(pk=transmission_id).first()
    return None if transmission is None else prepared_for(transmission)


def prepared_for(transmission: Transmission) -> PreparedTransmission:
    """``transmission`` prepared, compiled once per process per (id, template version).

    The key is a cache key, not what pins the content: that is the template snapshot, so a
    second process (or this one after eviction) compiles the same version again."""
    key = (transmission.id, transmission.template_version)
    prepared = _cache.get(key)
    if prepared is None:
        prepared = prepare(transmission)
        _cache[key] = prepared
        while len(_cache) > 1 and (
            len(_cache) > _CACHE_SIZE or sum(kept.size for kept in _cache.values()) > _CACHE_CHARS
        ):
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return prepared


#: Header names Engage writes itself; ``content.headers`` cannot replace them.
_OWN_HEADERS = frozenset({"from", "to", "subject", "reply-to", "date", "message-id", "mime-version"})


@dataclass(slots=True)
class GeneratedMessage:
    """One generated message: ``data`` (LF line ends), the envelope (domains as A-labels),
    and ``smtputf8`` when the envelope or the header block holds a non-ASCII local part."""

    data: bytes
    mail_from: str
    rcpt_to: str
    friendly_from: str
    subject: str
    smtputf8: bool = False


def event_fields(prepared: PreparedTransmission, *, message_id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    """The fields every event of this message carries (SPEC B §6.2-6.3)."""
    return message_event_fields(
        transmission_id=prepared.transmission_id, campaign_id=prepared.campaign_id,
        template_id=prepared.template_id, template_version=prepared.template_version,
        metadata=prepared.metadata, transactional=prepared.options.transactional,
        message_id=message_id, recipient=recipient, source=prepared.source,
    )  # fmt: skip


def transmission_event_fields(transmission: Transmission, *, message_id: str, recipient: dict[str, Any]) -> dict:
    """:func:`event_fields` from the stored transmission alone, for a message that ends
    without its content being compiled (a content that cannot be prepared, a cancel).
    ``transactional`` is the transmission's own option (a template's is not read)."""
    template_id, template_version = event_template(transmission)
    return message_event_fields(
        transmission_id=transmission.id, campaign_id=transmission.campaign_id,
        template_id=template_id, template_version=template_version,
        metadata=transmission.metadata or {}, transactional=bool((transmission.options or {}).get("transactional")),
        message_id=message_id, recipient=recipient, source=transmission.source,
    )  # fmt: skip


def message_event_fields(
    *, transmission_id: int, campaign_id: str, template_id: str, template_version: str, metadata: dict,
    transactional: bool, message_id: str, recipient: dict[str, Any], source: str = TransmissionSource.API,
) -> dict[str, Any]:  # fmt: skip
    """The fields of :func:`event_fields`. An SMTP-injected message's also carry
    ``recv_method: "esmtp"`` and, for a ``cc`` / ``bcc`` / ``archive`` copy, its ``rcpt_type``
    (SMTP-INJECTION.md §1.6-1.7: absent for an envelope recipient); a REST message's carry
    neither (SPEC B §6.2). A stored recipient without an address (never written by Engage)
    gives empty address fields, so that message still fails alone with its event."""
    address = recipient.get("address") if isinstance(recipient, dict) else None
    email = address.get("email") if isinstance(address, dict) else None
    email = email if isinstance(email, str) else ""
    fields = {
        "transmission_id": str(transmission_id),
        "message_id": message_id,
        "campaign_id": campaign_id,
        "template_id": template_id,
        "template_version": template_version,
        "rcpt_to": email.lower(),
        "raw_rcpt_to": email,
        "recipient_domain": email.rpartition("@")[2].lower(),
        "rcpt_meta": {**metadata, **(recipient.get("metadata") or {})},
        "rcpt_tags": list(recipient.get("tags") or []),
        "transactional": transactional,
    }
    fields.update(_source_fields(source, recipient))
    return fields


def _source_fields(source: str, recipient: dict[str, Any]) -> dict[str, str]:
    """The event fields that say how the message came in: for an SMTP injection
    ``recv_method: "esmtp"`` and a copy's ``rcpt_type`` (SMTP-INJECTION.md §1.6-1.7); none for
    REST. Send-path events and tracking tokens (hence opens and clicks) take them from here."""
    if source != TransmissionSource.SMTP:
        return {}
    fields = {"recv_method": "esmtp"}
    if recipient.get("rcpt_type"):
        fields["rcpt_type"] = recipient["rcpt_type"]
    return fields


def _inline_css(html: str) -> str:
    import css_inline

    try:
        return css_inline.inline(html)
    except ValueError as exc:  # css_inline.InlineError is a ValueError
        log.warning("inline_css failed, sending the HTML as is: %s", exc)
        return html


def registered_consent(prepared: PreparedTransmission, recipients: list[dict[str, Any]]) -> dict[str, str]:
    """The register's current consent of the ``recipients`` (stored recipients) of one batch,
    by ``mailbox_key``, for :func:`message_generate`'s ``consents``. One statement for
    the batch (``consent.selectors.consent_among``); none when nothing of the transmission
    could be tracked (open and click tracking off) or every recipient carries its own
    ``tracking_consent`` of ``denied`` (a ``granted`` one still yields to a register denial).
    An ``archive`` copy's original recipient is asked for too (:func:`_consent_subjects`)."""
    return registered_consent_group([(prepared, recipient) for recipient in recipients])


def registered_consent_group(pairs: list[tuple[PreparedTransmission, dict[str, Any]]]) -> dict[str, str]:
    """:func:`registered_consent` for a batch whose recipients belong to several
    transmissions (``(prepared, stored recipient)`` pairs: a group of SMTP injections, each
    with its own options): one statement for all, asking only for the recipients of a
    transmission that tracks something and that carry no ``tracking_consent`` of ``denied``
    (for an ``archive`` copy: itself and the recipient whose copy it replicates)."""
    asked = [
        email
        for prepared, recipient in pairs
        if prepared.options.open_tracking or prepared.options.click_tracking or prepared.options.initial_open
        for subject in _consent_subjects(recipient)
        if subject.get("tracking_consent") != "denied" and (email := _email_or_none(subject)) is not None
    ]
    return consent_among(addresses=asked) if asked else {}


def _consent_subjects(recipient: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stored recipients whose consent decides whether ``recipient``'s message is
    tracked: itself, and for an SMTP ``archive`` copy the recipient it replicates
    (``archive_of``, SMTP-INJECTION.md §1.6: that recipient's links and pixel; an
    ``archive_of`` that cannot be read is yielded as ``{}``: no address, so no consent)."""
    yield recipient
    original = recipient.get("archive_of")
    if original:
        subject = original.get("recipient") if isinstance(original, dict) else None
        yield subject if isinstance(subject, dict) else {}


def _email_or_none(recipient: Any) -> str | None:
    """The stored recipient's address, or None when it has none that can be read."""
    address = recipient.get("address") if isinstance(recipient, dict) else None
    email = address.get("email") if isinstance(address, dict) else None
    return email if isinstance(email, str) else None


def _consented(recipient: dict[str, Any], consents: Mapping[str, str]) -> bool:
    """Whether ``recipient``'s message may be tracked (``mailcore.consent.tracking_consented``,
    SPEC A.5), from ``consents`` (the register's states by ``mailbox_key``, see
    :func:`registered_consent`): for an SMTP ``archive`` copy only when the recipient whose
    copy it replicates consents too, so the archive copy is as untracked as that copy is."""
    for subject in _consent_subjects(recipient):
        email = _email_or_none(subject)
        if email is None:
            return False
        consented = tracking_consented(
            recipient=subject.get("tracking_consent"),
            register=consents.get(mailbox_key(email)),
            default=settings.ENGAGE_TRACKING_CONSENT_DEFAULT,
        )
        if not consented:
            return False
    return True


def message_generate(
    prepared: PreparedTransmission,
    *,
    message_id: str,
    recipient: dict[str, Any],
    now: float | None = None,
    consents: Mapping[str, str] | None = None,
) -> GeneratedMessage:
    """Render and build one message: the recipient's data context, its tracking tokens,
    the rendered parts, the envelope, the header list, the MIME bytes (LF line ends).

    ``recipient`` is a stored recipient (``address``, ``metadata``, ``substitution_data``,
    ``tags``, ``return_path``, optional ``tracking_consent``, an SMTP archive copy's
    ``archive_of``); ``now`` (Unix seconds, default the clock) dates the message and its
    tokens; ``consents`` is the register's current consent (``"granted"`` / ``"denied"``) by
    ``mailbox_key``, of this address and, for an archive copy, of the address it replicates
    (:func:`registered_consent`; an address left out is not in the register). Without consent
    the message is built as with open and click tracking off (SPEC A.5). Raises
    :class:`GenerationFailed` on a render error, an address or header that cannot be written
    (``mailcore.headers.HeaderError``), an unusable tracking domain or a message over
    ENGAGE_MAX_MESSAGE_BYTES.
    """
    now = time.time() if now is None else now
    address = recipient["address"]
    email = address["email"]
    return_path = recipient.get("return_path") or prepared.return_path
    context = build_context(
        tx_metadata=prepared.metadata,
        tx_substitution_data=prepared.substitution_data,
        rcpt_metadata=recipient.get("metadata"),
        rcpt_substitution_data=recipient.get("substitution_data"),
        address_email=email,
        address_name=address.get("name"),
        return_path=return_path or None,
    )
    consented = _consented(recipient, consents or {})
    tokens = _message_tokens(prepared, recipient, message_id=message_id, now=now, consented=consented)
    tracker = MessageTracker(
        base_url=prepared.base_url,
        tokens=_body_tokens(prepared, recipient, tokens, now=now, consented=consented),
        options=prepared.options,
        consented=consented,
    )
    if prepared.rfc822:
        return _generate_rfc822(
            prepared, context, tracker, tokens, recipient=recipient, return_path=return_path, message_id=message_id,
            now=now,
        )  # fmt: skip
    rendered, html = _render(prepared, context, tracker)
    from_email, from_name = from_parts(rendered.get("from") or "")
    subject = rendered.get("subject") or ""
    sender, envelope_from, envelope_to = _envelope(prepared, from_email, return_path=return_path, email=email)
    headers: list[tuple[str, Any]] = [
        ("From", [(from_name, from_email)]),
        ("To", to_addresses(address)),
        ("Subject", subject),
    ]
    message_id_header = _message_id_header(message_id, sender.rpartition("@")[2])
    custom = rendered.get("headers") or {}
    _headers_add(headers, prepared, context, tokens, custom=custom, now=now, message_id_header=message_id_header)
    data = _mime(prepared, headers, rendered, html)
    return GeneratedMessage(
        data=data,
        mail_from=envelope_from,
        rcpt_to=envelope_to,
        friendly_from=from_email,
        subject=subject,
        smtputf8=_needs_smtputf8(data, envelope_from, envelope_to),
    )


def _message_tokens(
    prepared: PreparedTransmission, recipient: dict[str, Any], *, message_id: str, now: float, consented: bool
) -> MessageTokens | None:
    """The message's click/open token maker, or None when nothing of it is tracked (a
    transactional message with open and click tracking off, or without consent). Without
    consent a non-transactional message still gets one, for its List-Unsubscribe URL only,
    naming the message and the recipient and nothing else (SPEC A.5: no metadata in any URL;
    ``TokenSigner.for_message_reference``). Raises
    GenerationFailed when it is needed and the transmission's tracking domain cannot be used."""
    options = prepared.options
    tracked = consented and (options.open_tracking or options.click_tracking)
    if not (tracked or not options.transactional):
        return None
    email = recipient["address"]["email"]
    if consented:
        tokens = tracking_signer().for_message(
            message_id=message_id,
            transmission_id=str(prepared.transmission_id),
            rcpt_to=email.lower(),
            issued_at=int(now),
            campaign_id=prepared.campaign_id or None,
            template_id=prepared.template_id,
            template_version=prepared.template_version or None,
            transactional=options.transactional,
            rcpt_meta={**prepared.metadata, **(recipient.get("metadata") or {})},
            rcpt_tags=recipient.get("tags") or None,
            click_tracking_include_metadata=settings.ENGAGE_CLICK_TRACKING_INCLUDE_METADATA,
            max_metadata_len=settings.ENGAGE_MAX_METADATA_LEN,
            event_extra=_source_fields(prepared.source, recipient),
        )
    else:
        tokens = tracking_signer().for_message_reference(
            message_id=message_id, rcpt_to=email.lower(), issued_at=int(now)
        )
    if prepared.base_url_problem:
        raise GenerationFailed(prepared.base_url_problem, part="tracking_domain")
    return tokens


def _body_tokens(
    prepared: PreparedTransmission, recipient: dict[str, Any], tokens: MessageTokens | None, *, now: float,
    consented: bool,
) -> MessageTokens | None:  # fmt: skip
    """The tokens of the message's body links and pixels: its own, except for an SMTP
    ``archive`` copy, which carries those of the envelope copy it replicates (its stored
    ``archive_of``: that copy's message id and recipient), so a click or open on the archive
    copy counts for that recipient (SMTP-INJECTION.md §1.6). Its List-Unsubscribe stays its
    own: an archiver's unsubscribe must not unsubscribe the recipient. ``consented`` is the
    archive copy's consent, which includes that recipient's (:func:`_consented`): without it
    the body is untracked and its tokens name no one and carry no metadata."""
    original = recipient.get("archive_of")
    if tokens is None or not original:
        return tokens
    if not consented:
        return None
    return _message_tokens(
        prepared, original["recipient"], message_id=original["message_id"], now=now, consented=consented
    )


def _render(
    prepared: PreparedTransmission, context: dict, tracker: MessageTracker
) -> tuple[dict[str, Any], str | None]:
    """The rendered parts (``from``, ``subject``, ``text``, ``html``, ``amp_html``,
    ``headers``) and the HTML as sent (its CSS inlined when ``inline_css``)."""
    try:
        rendered = prepared.compiled.render(context, tracker, max_bytes=settings.ENGAGE_MAX_MESSAGE_BYTES)
    except TemplateRenderError as exc:
        raise GenerationFailed(exc.description, part=exc.part) from None
    html = rendered.get("html")
    if html is not None and prepared.inline_css:
        html = _inline_css(html)
    return rendered, html


def _envelope(prepared: PreparedTransmission, from_email: str, *, return_path: str, email: str) -> tuple[str, str, str]:
    """``(sender, MAIL FROM, RCPT TO)``, domains as A-labels: the rendered From address,
    the return path (else the sender) and the recipient. Raises GenerationFailed
    (``part="from"``) for an address that cannot be written, or a substituted From that is
    not exactly one address."""
    try:
        if prepared.from_templated and (problem := address_problem(from_email)) is not None:
            raise HeaderError(
                f"the From header: {from_email[:254]!r} is not an email address (exactly one is needed here): {problem}"
            )
        sender = envelope_address(from_email)
        return sender, envelope_address(return_path) if return_path else sender, envelope_address(email)
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="from") from None


def _headers_add(
    headers: list[tuple[str, Any]],
    prepared: PreparedTransmission,
    context: dict,
    tokens: MessageTokens | None,
    *,
    custom: dict[str, str],
    now: float,
    message_id_header: str,
) -> None:
    """Append, after From, To and Subject: Reply-To, Date, Message-ID, the content's own
    headers (``custom``: rendered; its address headers from ``prepared.addresses``; of two
    names that differ only in case the first), then Engage's List-Unsubscribe headers for a
    tracked non-transactional message, unless the content has its own."""
    mailboxes = _mailboxes(prepared, context)
    if mailboxes.get("Reply-To"):
        headers.append(("Reply-To", mailboxes["Reply-To"]))
    headers.append(("Date", formatdate(now, usegmt=True)))
    headers.append(("Message-ID", message_id_header))
    taken = set(_OWN_HEADERS)
    for name in prepared.content.get("headers") or ():
        lname = name.lower()
        if lname not in taken and (name in custom or name in mailboxes):
            taken.add(lname)  # the first of two names that differ only in case
            headers.append((name, mailboxes[name] if name in mailboxes else custom[name]))
    if not prepared.options.transactional and tokens is not None and "list-unsubscribe" not in taken:
        headers += [item for item in _list_unsubscribe(prepared, tokens) if item[0].lower() not in taken]


def _mailboxes(prepared: PreparedTransmission, context: dict) -> dict[str, Any]:
    """Reply-To and the content's address headers rendered for this recipient, by name."""
    try:
        return {name: template.render(context) for name, template in prepared.addresses.items()}
    except TemplateRenderError as exc:
        raise GenerationFailed(exc.description, part=exc.part) from None
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="headers") from None


def _mime(
    prepared: PreparedTransmission, headers: list[tuple[str, Any]], rendered: dict[str, Any], html: str | None
) -> bytes:
    """The message's MIME bytes; GenerationFailed when a header cannot be written or the
    message is over ENGAGE_MAX_MESSAGE_BYTES."""
    try:
        data = build_message(
            headers=headers,
            text=rendered.get("text"),
            html=html,
            amp_html=rendered.get("amp_html"),
            attachments=prepared.content.get("attachments") or (),
            inline_images=prepared.content.get("inline_images") or (),
        )
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="headers") from None
    _check_size(data)
    return data


def _check_size(data: bytes) -> None:
    limit = settings.ENGAGE_MAX_MESSAGE_BYTES
    if len(data) > limit:
        raise GenerationFailed(
            f"the message is {len(data)} bytes, over the {limit} bytes allowed (ENGAGE_MAX_MESSAGE_BYTES)",
            part="message",
        )


def _needs_smtputf8(data: bytes, mail_from: str, rcpt_to: str) -> bool:
    """A non-ASCII local part in the envelope or the top-level header block (RFC 6531/6532)."""
    if not (mail_from.isascii() and rcpt_to.isascii()):
        return True
    end = data.find(b"\n\n")
    return not data[: end if end >= 0 else len(data)].isascii()


def _list_unsubscribe(prepared: PreparedTransmission, tokens: MessageTokens) -> list[tuple[str, str]]:
    """The RFC 8058 headers of a non-transactional message (SPEC A.2).

    The caller's own go instead, so exactly one of each is sent: a caller's
    ``List-Unsubscribe`` replaces both of these (Engage's one-click POST points at Engage's
    URL, which is then absent), a caller's ``List-Unsubscribe-Post`` replaces only that one.
    Each URI must be one RFC 2369 allows between ``<`` and ``>``
    (``mailcore.domains.list_unsubscribe_uri_problem``), else :class:`GenerationFailed`.
    """
    uris = (
        f"mailto:{prepared.unsubscribe_mailto}?subject=unsubscribe",
        f"{prepared.base_url}/u/{tokens.open('unsubscribe')}",
    )
    for uri in uris:
        if (problem := list_unsubscribe_uri_problem(uri)) is not None:
            raise GenerationFailed(problem, part="headers")
    return [
        ("List-Unsubscribe", f"<{uris[0]}>, <{uris[1]}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def _missing_origin_fields(
    compiled: CompiledMessage, *, message_id: str, return_path: str, now: float
) -> list[tuple[str, str]]:
    """``Date`` and ``Message-ID`` for an ``email_rfc822`` source that lacks them, as a message
    submission agent adds them (RFC 6409 §8.2-8.3; RFC 5322 §3.6.1 requires a Date, and the
    large mailbox providers refuse mail without one or without a Message-ID). The Message-ID
    is the copy's own (``<message_id@domain>``, as REST messages have), its domain the return
    path's, else the literal From's, else ``localhost``. What the source has is left as it is."""
    fields: list[tuple[str, str]] = []
    if not compiled.has_date:
        fields.append(("Date", formatdate(now, usegmt=True)))
    if not compiled.has_message_id:
        domain = ""
        for address in (return_path, from_parts(compiled.literal_from)[0]):
            try:
                domain = envelope_address(address).rpartition("@")[2] if address else ""
            except HeaderError:
                domain = ""
            if domain:
                break
        fields.append(("Message-ID", _message_id_header(message_id, domain or "localhost")))
    return fields


def _message_id_header(message_id: str, domain: str) -> str:
    """A copy's ``Message-ID``: ``<message_id@domain>``, the id its events and tokens carry."""
    return f"<{message_id}@{domain}>"


def _generate_rfc822(
    prepared: PreparedTransmission, context: dict, tracker: MessageTracker, tokens: MessageTokens | None, *,
    recipient: dict[str, Any], return_path: str, message_id: str, now: float,
) -> GeneratedMessage:  # fmt: skip
    """email_rfc822 content: the compiled source rendered with the message's tracker; no To
    header is built (SPEC B §1.3, B §3.2). A non-transactional message gets Engage's
    List-Unsubscribe headers unless the source has its own, as inline content does: the
    source's List-Unsubscribe replaces both, its List-Unsubscribe-Post only Engage's. An SMTP
    ``bcc`` copy gets a ``Bcc:`` naming only its own recipient
    (``mailcore.headers.own_bcc_line``; SMTP-INJECTION.md §1.6), and a source without ``Date``
    or ``Message-ID`` gets them (:func:`_missing_origin_fields`)."""
    compiled: CompiledMessage = prepared.compiled
    address = recipient["address"]
    email = address["email"]
    extra = b""
    try:
        if recipient.get("rcpt_type") == "bcc":
            extra = own_bcc_line((address.get("name") or "", email))
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="headers") from None
    if not prepared.options.transactional and tokens is not None and not compiled.has_list_unsubscribe:
        own = _list_unsubscribe(prepared, tokens)
        extra += header_block(own[:1] if compiled.has_list_unsubscribe_post else own)
    extra += header_block(_missing_origin_fields(compiled, message_id=message_id, return_path=return_path, now=now))
    try:
        rendered = compiled.render(context, tracker, extra_headers=extra)
    except TemplateRenderError as exc:
        raise GenerationFailed(exc.description, part=exc.part) from None
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="headers") from None
    from_email, _name = from_parts(rendered.from_header)
    try:
        envelope_from = envelope_address(return_path or from_email)
        envelope_to = envelope_address(email)
    except HeaderError as exc:
        raise GenerationFailed(str(exc), part="from") from None
    _check_size(rendered.data)
    return GeneratedMessage(
        data=rendered.data,
        mail_from=envelope_from,
        rcpt_to=envelope_to,
        friendly_from=from_email,
        subject=rendered.subject,
        smtputf8=_needs_smtputf8(rendered.data, envelope_from, envelope_to),
    )
