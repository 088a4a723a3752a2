"""Validation of a ``POST /transmissions`` body (SPEC B §1.1-1.4): PURE.

Everything the caller needs (limits, the clock) is passed in; failures of the whole request
are ``EngageError`` subclasses, failures of one recipient are collected and reported in
``rcpt_to_errors`` by the service. Null values were already dropped at the top level by
``request_object``; nested nulls mean "not given" here too. Unknown fields are ignored.
``return_path``, like ``content.from``/``reply_to`` (``templates_app.content``) and each
recipient's addresses (``recipient_lists.recipients``), must be an email address.
``tracking_domain`` must be ``host[:port]`` or ``http(s)://host[:port]`` (``mailcore.domains``)
and is stored in that one written form (host as an IDNA A-label); an inline image's ``name``
must be a Content-ID (``mailcore.mime.content_id_problem``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engage import errors
from engage.api.fields import bool_options
from mailcore.addresses import address_problem
from mailcore.domains import tracking_domain_normalize
from mailcore.headers import ADDRESS_HEADERS
from mailcore.language import TemplateSyntaxError, reserved_key_problem
from mailcore.mime import content_id_problem
from mailcore.rfc822 import Rfc822Error, compile_message
from mailcore.times import offset_problem
from templates_app.content import normalize_content

#: Options that are accepted and stored; sandbox changes nothing in Engage, skip_suppression
#: skips the suppression check at generation (transmissions.sending).
BOOL_OPTIONS = (
    "open_tracking",
    "click_tracking",
    "initial_open",
    "transactional",
    "inline_css",
    "sandbox",
    "skip_suppression",
    "perform_substitutions",
)
MAX_CAMPAIGN_ID_BYTES = 64
MAX_DESCRIPTION_BYTES = 1024
MAX_TEMPLATE_ID_BYTES = 64
MAX_ATTACHMENT_NAME_BYTES = 255
#: An attachment's or inline image's ``type``: ``type/subtype`` as RFC 6838 §4.2 restricted
#: names (RFC 2045 §5.1 tokens), no parameters: Engage writes the Content-Type from it.
MEDIA_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
_MEDIA_TYPE = re.compile(MEDIA_TYPE_PATTERN)


@dataclass(frozen=True, slots=True)
class TransmissionInputLimits:
    """The size limits a transmission request is checked against (SPEC B §1.1), from the
    ENGAGE_MAX_* / ENGAGE_START_TIME_MAX_SECONDS settings
    (``transmissions.services.limits_from_settings``): bytes of JSON for substitution data
    and metadata, bytes of content, seconds ahead for ``options.start_time``."""

    max_substitution_data_bytes: int
    max_metadata_bytes: int
    #: None: not measured (an SMTP injection, measured by the listener against its SIZE).
    max_content_bytes: int | None
    max_schedule_seconds: int


@dataclass(slots=True)
class TransmissionInput:
    """A validated request, minus the recipients."""

    content: dict[str, Any] = field(default_factory=dict)
    template_id: str = ""
    use_draft_template: bool = False
    list_id: str = ""
    campaign_id: str = ""
    description: str = ""
    return_path: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    substitution_data: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    start_time: datetime | None = None
    tracking_domain: str = ""


BODIES = ("text", "html", "amp_html")  # what ``perform_substitutions: false`` sends as written


def address_headers(content: dict[str, Any], skip: Collection[str] = ()) -> list[tuple[str, str]]:
    """``(header name, template)`` of the address headers of inline ``content``: ``reply_to``
    as ``Reply-To``, then those of ``content.headers`` (``mailcore.headers.ADDRESS_HEADERS``)
    whose lower-case name is not in ``skip``. These are compiled per mailbox
    (``mailcore.address_templates``), never as one text."""
    found = [("Reply-To", content["reply_to"])] if content.get("reply_to") else []
    for name, value in (content.get("headers") or {}).items():
        if name.lower() in ADDRESS_HEADERS and name.lower() not in skip and isinstance(value, str):
            found.append((name, value))
    return found


def content_to_compile(content: dict[str, Any], *, substitute: bool) -> dict[str, Any]:
    """The part of inline ``content`` that goes through the template language as text: all
    of it but ``reply_to`` and the address headers (see :func:`address_headers`), and
    without the bodies under ``perform_substitutions: false`` (headers still are)."""
    drop = BODIES if not substitute else ()
    result = {key: value for key, value in content.items() if key not in drop and key != "reply_to"}
    headers = content.get("headers")
    if headers:
        result["headers"] = {name: value for name, value in headers.items() if name.lower() not in ADDRESS_HEADERS}
    return result


def _nbytes(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _string(body: dict, key: str, max_bytes: int | None = None) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.InvalidData(f"{key} must be a string")
    if max_bytes is not None and _nbytes(value) > max_bytes:
        raise errors.InvalidData(f"{key} must be at most {max_bytes} bytes")
    return value


def parse_start_time(raw: Any, *, now: datetime, max_seconds: int) -> datetime | None:
    """``"now"`` / a past time → None (generate now); a future ISO time with offset → itself.

    Unparsable, naive, or more than ``max_seconds`` ahead → 422 / 1300.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise errors.InvalidData("options.start_time must be a string: 'now' or YYYY-MM-DDTHH:MM:SS+HH:MM")
    text = raw.strip()
    if text.lower() == "now":
        return None
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise errors.InvalidData(f"options.start_time '{raw}' is not a valid date-time (YYYY-MM-DDTHH:MM:SS+HH:MM)")
    if when.tzinfo is None:
        raise errors.InvalidData(f"options.start_time '{raw}' needs a UTC offset (YYYY-MM-DDTHH:MM:SS+HH:MM)")
    if (problem := offset_problem(when)) is not None:
        raise errors.InvalidData(f"options.start_time '{raw}': {problem}")
    if when <= now:
        return None
    if when - now > timedelta(seconds=max_seconds):
        raise errors.InvalidData(f"options.start_time '{raw}' is more than {max_seconds} seconds in the future")
    return when


def _options(raw: Any, *, now: datetime, limits: TransmissionInputLimits) -> tuple[dict[str, Any], datetime | None]:
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        raise errors.InvalidData("options must be an object")
    options: dict[str, Any] = bool_options(raw, BOOL_OPTIONS)
    ip_pool = raw.get("ip_pool")
    if ip_pool is not None:
        if not isinstance(ip_pool, str):
            raise errors.InvalidData("options.ip_pool must be a string")
        options["ip_pool"] = ip_pool
    start_time = parse_start_time(raw.get("start_time"), now=now, max_seconds=limits.max_schedule_seconds)
    if raw.get("start_time") is not None:
        options["start_time"] = raw["start_time"]
    return options, start_time


def _files(raw: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise errors.InvalidData(f"content.{key} must be an array of {{type, name, data}} objects")
    files: list[dict[str, str]] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise errors.InvalidData(f"content.{key}[{index}] must be an object")
        for part in ("type", "name", "data"):
            if not isinstance(item.get(part), str) or not item[part]:
                raise errors.RequiredFieldMissing(f"content.{key}[{index}].{part} is required and must be a string")
        if not _MEDIA_TYPE.match(item["type"]):
            raise errors.InvalidData(
                f"content.{key}[{index}].type '{item['type'][:255]}' is not a media type: type/subtype, no parameters"
                " (RFC 6838 §4.2)"
            )
        if _nbytes(item["name"]) > MAX_ATTACHMENT_NAME_BYTES:
            raise errors.InvalidData(f"content.{key}[{index}].name must be at most 255 bytes")
        if key == "inline_images" and (problem := content_id_problem(item["name"])) is not None:
            raise errors.InvalidData(f"content.inline_images[{index}].name: {problem}")
        if key == "inline_images" and item["name"] in names:
            raise errors.InvalidData(f"content.inline_images names must be unique ('{item['name']}' is repeated)")
        names.add(item["name"])
        try:
            base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidData(f"content.{key}[{index}].data is not valid base64")
        files.append({"type": item["type"], "name": item["name"], "data": item["data"]})
    return files


def _content(raw: Any, target: TransmissionInput, *, limits: TransmissionInputLimits) -> None:
    if raw is None or (isinstance(raw, dict) and all(value is None for value in raw.values())):
        raise errors.RequiredFieldMissing("content object or template_id required")
    if not isinstance(raw, dict):
        raise errors.InvalidData("content must be an object")
    template_id = raw.get("template_id")
    if template_id is not None:
        if not isinstance(template_id, str) or not template_id:
            raise errors.InvalidData("content.template_id must be a non-empty string")
        if _nbytes(template_id) > MAX_TEMPLATE_ID_BYTES:
            raise errors.InvalidData("content.template_id must be at most 64 bytes")
        use_draft = raw.get("use_draft_template")
        if use_draft is not None and not isinstance(use_draft, bool):
            raise errors.InvalidData("content.use_draft_template must be a boolean")
        others = [key for key in ("from", "subject", "html", "text", "email_rfc822") if raw.get(key) is not None]
        if others:
            raise errors.InvalidFieldCombination(
                f"content.template_id cannot be combined with {', '.join('content.' + key for key in others)}"
            )
        target.template_id = template_id
        target.use_draft_template = bool(use_draft)
        return
    content = normalize_content(raw, max_bytes=limits.max_content_bytes)
    for key in ("attachments", "inline_images"):
        if raw.get(key) is not None:
            if "email_rfc822" in content:
                raise errors.InvalidFieldCombination(f"content.email_rfc822 cannot be combined with content.{key}")
            content[key] = _files(raw[key], key)
    target.content = content


def _check_rfc822(source: str, *, substitute: bool) -> None:
    """An ``email_rfc822`` source must be a MIME tree whose substituted headers and bodies
    compile (422 / 1300, or 422 / 3000 with part and line like inline content)."""
    try:
        compile_message(source, substitute=substitute)
    except Rfc822Error as exc:
        raise errors.InvalidData(f"content.email_rfc822 is not a MIME message: {exc}") from None
    except TemplateSyntaxError as exc:
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None


def _recipients_source(raw: Any, target: TransmissionInput) -> list | None:
    """The inline recipients array, or None when the request names a stored list."""
    if raw is None:
        raise errors.RequiredFieldMissing("recipients is a required field")
    if isinstance(raw, dict):
        list_id = raw.get("list_id")
        if not isinstance(list_id, str) or not list_id:
            raise errors.RequiredFieldMissing("recipients must be an array, or an object with list_id")
        target.list_id = list_id
        return None
    if not isinstance(raw, list):
        raise errors.InvalidData("recipients must be an array, or an object with list_id")
    return raw


def transmission_input_parse(
    body: dict, *, now: datetime, limits: TransmissionInputLimits, compile_rfc822: bool = True
) -> tuple[TransmissionInput, list | None]:
    """Validate every whole-request field; returns the input and the raw inline recipients
    (None for a stored list). Checks run in the order a client most needs to hear about.

    ``compile_rfc822=False`` leaves an ``email_rfc822`` source uncompiled: an SMTP injection,
    whose listener checked what it cheaply can (size, header block) and whose one compile is
    generation's, where a source that does not compile fails each message with its
    ``generation_failure`` (SMTP-INJECTION.md §5.5)."""
    target = TransmissionInput()
    _content(body.get("content"), target, limits=limits)
    raw_recipients = _recipients_source(body.get("recipients"), target)
    target.campaign_id = _string(body, "campaign_id", MAX_CAMPAIGN_ID_BYTES)
    target.description = _string(body, "description", MAX_DESCRIPTION_BYTES)
    target.return_path = _string(body, "return_path").strip()
    if target.return_path and (problem := address_problem(target.return_path)) is not None:
        raise errors.InvalidData(f"return_path '{target.return_path}' is not a valid email address: {problem}")
    try:
        target.tracking_domain = tracking_domain_normalize(_string(body, "tracking_domain").strip())
    except ValueError as exc:
        raise errors.InvalidData(f"tracking_domain: {exc}") from None
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise errors.InvalidData("metadata must be an object")
        if _json_bytes(metadata) > limits.max_metadata_bytes:
            raise errors.InvalidData(f"metadata must be at most {limits.max_metadata_bytes} bytes of JSON")
        target.metadata = metadata
    substitution_data = body.get("substitution_data")
    if substitution_data is not None:
        if not isinstance(substitution_data, dict):
            raise errors.InvalidData("substitution_data must be an object")
        if _json_bytes(substitution_data) > limits.max_substitution_data_bytes:
            raise errors.SubstitutionDataTooLarge(
                f"substitution_data must be at most {limits.max_substitution_data_bytes} bytes of JSON"
            )
        if (problem := reserved_key_problem(substitution_data)) is not None:
            raise errors.InvalidData(problem)
        target.substitution_data = substitution_data
    target.options, target.start_time = _options(body.get("options"), now=now, limits=limits)
    if compile_rfc822 and "email_rfc822" in target.content:
        _check_rfc822(
            target.content["email_rfc822"], substitute=target.options.get("perform_substitutions") is not False
        )
    return target, raw_recipients


def recipient_check_limits(
    recipient: dict, index: int, *, tx_metadata: dict, limits: TransmissionInputLimits
) -> errors.EngageError | None:
    """Per-recipient limits on top of ``normalize_recipient``: merged metadata and
    substitution data sizes."""
    metadata = recipient.get("metadata")
    if metadata and _json_bytes({**tx_metadata, **metadata}) > limits.max_metadata_bytes:
        return errors.InvalidData(
            f"recipients[{index}]: merged metadata must be at most {limits.max_metadata_bytes} bytes of JSON"
        )
    subs = recipient.get("substitution_data")
    if subs and _json_bytes(subs) > limits.max_substitution_data_bytes:
        return errors.SubstitutionDataTooLarge(
            f"recipients[{index}]: substitution_data must be at most {limits.max_substitution_data_bytes} bytes"
        )
    return None
