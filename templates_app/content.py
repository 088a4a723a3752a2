"""Validation of a template's ``content`` and ``options`` (SPEC B §2.1, §1.3): PURE.

Everything the caller needs is passed in (the size limit included); failures are
``EngageError`` subclasses so views need no translation. Null values mean "not given" and
unknown keys are ignored.

Addresses: ``from``'s email, every address of ``reply_to`` and of an address header in
``headers`` (``Cc``, ``Sender``...) must be email addresses
(``mailcore.addresses.address_problem``), 422 / 1300 naming the field. A value that
uses the template language (``{{``) is parsed into its mailboxes before substitution
(``mailcore.address_templates``): its literal addresses are checked here, a syntax
error is 422 / 3000, and each substituted address is checked per message when it renders
(a message whose rendered address is not exactly one fails alone, ``generation_failure``).

A line break (CR or LF) in ``from`` (its email or name), ``reply_to`` or a header value is
refused (422 / 3002 naming the field): each is one header line, and a line break in it would
end up as a second header (``Bcc: ...``) or be lost.

``Bcc`` (and ``Resent-Bcc``) in ``headers`` is refused (422 / 3002): a Bcc header is seen by
every recipient (RFC 5322 §3.6.3); a blind copy is a recipient whose ``header_to`` is the
visible recipient's address (SparkPost's pattern, SPEC B §1.4).
"""

from __future__ import annotations

import json
import re
from typing import Any

from engage import errors
from engage.api.fields import bool_options
from mailcore.address_templates import compile_addresses
from mailcore.addresses import address_problem, split_address
from mailcore.headers import ADDRESS_HEADERS, BLIND_HEADERS, HeaderError
from mailcore.language.errors import TemplateSyntaxError

OPTION_KEYS = ("open_tracking", "click_tracking", "transactional")
STRING_PARTS = ("subject", "html", "text", "amp_html", "reply_to")
FORBIDDEN_HEADERS = {"content-type", "content-transfer-encoding"}
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 §2.2)
MAX_HEADER_NAME = 200  # characters: the name and some of its value fit on the first line
IGNORED_HEADERS = {"from", "to", "reply-to"}  # built by Engage; SPEC B §1.3 says not to put To here


def parse_template_id(value: str | None) -> str | None:
    """A template id as given (None when not given); 422 / 1300 when it is empty or has a
    space, a control character or ``/`` (it is a path segment of ``/api/v1/templates/{id}``)."""
    if value is None:
        return None
    if not value.strip() or "/" in value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise errors.InvalidData("id must be a non-empty string without spaces or '/'")
    return value


def _check_email(email: str, field: str) -> None:
    if "{{" in email:
        return  # rendered per message
    problem = address_problem(email)
    if problem is not None:
        raise errors.InvalidData(f"{field} '{email}' is not a valid email address: {problem}")


def check_address_list(value: str, field: str, header: str) -> None:
    """``value`` (``"Name <a@x.test>, {{name}} <{{email}}>"``), the template of the address
    header ``header``, must be a list of mailboxes whose literal addresses are email
    addresses: 422 / 1300 naming ``field``; 422 / 3000 when a part does not compile.
    Substituted addresses are checked when they render."""
    try:
        compile_addresses(header, value)
    except HeaderError as exc:
        raise errors.InvalidData(f"{field} '{value}' is not a list of email addresses ({exc})") from None
    except TemplateSyntaxError as exc:
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None


def _one_line(value: str, field: str) -> None:
    if "\r" in value or "\n" in value:
        raise errors.InvalidHeader(f"{field} must not contain line breaks (it is one header line)")


def _given(mapping: dict) -> dict:
    return {key: value for key, value in mapping.items() if value is not None}


def normalize_from(value: Any) -> dict[str, str]:
    """``"addr"``, ``"Name <addr>"`` or ``{"email", "name"}`` → ``{"email", "name"?}``.

    Raises 422 / 1400 without an email, 422 / 1300 when it is not an email address, 422 /
    3002 when the email or the name has a line break."""
    email: object  # any JSON value until checked; both are str below
    name: object
    if isinstance(value, str):
        name, email = split_address(value)
    elif isinstance(value, dict):
        email, name = value.get("email"), value.get("name")
        if email is None:
            raise errors.RequiredFieldMissing("content.from.email is a required field")
        if not isinstance(email, str) or (name is not None and not isinstance(name, str)):
            raise errors.InvalidData("content.from.email and content.from.name must be strings")
        email, name = email.strip(), (name or "").strip()
    else:
        raise errors.InvalidData("content.from must be a string or an object with email and name")
    if not email:
        raise errors.RequiredFieldMissing("content.from.email is a required field")
    _one_line(email, "content.from.email")
    _one_line(name, "content.from.name")
    _check_email(email, "content.from.email")
    result = {"email": email}
    if name:
        result["name"] = name
    return result


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise errors.InvalidData("content.headers must be an object of header names to string values")
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if header_value is None:
            continue
        if not isinstance(header_value, str):
            raise errors.InvalidData(f"content.headers.{name} must be a string")
        if not _HEADER_NAME.match(name) or len(name) > MAX_HEADER_NAME:
            raise errors.InvalidHeader(f"'{name[:MAX_HEADER_NAME]}' is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise errors.InvalidHeader(f"The {name} header cannot be set in content.headers")
        if name.lower() in BLIND_HEADERS:
            raise errors.InvalidHeader(
                f"content.headers.{name}: Engage never sends a {name} header, every recipient would see it"
                " (RFC 5322 §3.6.3). For a blind copy add a recipient whose address.header_to is the"
                " visible recipient's address (SPEC B §1.4)"
            )
        if "\r" in header_value or "\n" in header_value:
            raise errors.InvalidHeader(f"The value of header {name} must not contain line breaks")
        if name.lower() in ADDRESS_HEADERS and name.lower() not in IGNORED_HEADERS:
            check_address_list(header_value, f"content.headers.{name}", name)
        headers[name] = header_value
    return headers


def check_content_size(content: dict[str, Any], *, max_bytes: int) -> None:
    """Refuse ``content`` larger than ``max_bytes`` as UTF-8 JSON (a template's content and the
    link check's inline content, both capped at ``ENGAGE_MAX_TEMPLATE_CONTENT_BYTES``):
    422 / 1300 saying the limit, with ``limit`` (bytes) beside the description."""
    if len(json.dumps(content, ensure_ascii=False).encode("utf-8")) > max_bytes:
        raise errors.InvalidData(
            f"content is larger than {max_bytes} bytes (ENGAGE_MAX_TEMPLATE_CONTENT_BYTES)", extra={"limit": max_bytes}
        )


def normalize_content(raw: Any, *, max_bytes: int | None) -> dict[str, Any]:
    """A stored template's content: validated, nulls dropped, ``from`` as an object.

    Inline content needs ``from``, ``subject`` and one of ``html``/``text`` (422 1400 naming
    the field); ``email_rfc822`` must come alone (422 1301 otherwise). Larger than
    ``max_bytes`` as JSON: 422 1300 (None: not measured).
    """
    if not isinstance(raw, dict):
        raise errors.InvalidData("content must be an object")
    given = _given(raw)
    if max_bytes is not None:
        check_content_size(given, max_bytes=max_bytes)

    if "email_rfc822" in given:
        rfc822 = given["email_rfc822"]
        if not isinstance(rfc822, str):
            raise errors.InvalidData("content.email_rfc822 must be a string")
        others = [key for key in ("from", "subject", "html", "text", "amp_html", "headers", "reply_to") if key in given]
        if others:
            raise errors.InvalidFieldCombination(
                f"content.email_rfc822 cannot be combined with {', '.join('content.' + key for key in others)}"
            )
        return {"email_rfc822": rfc822}

    content: dict[str, Any] = {}
    if "from" not in given:
        raise errors.RequiredFieldMissing("content.from is a required field")
    content["from"] = normalize_from(given["from"])
    for key in STRING_PARTS:
        if key in given:
            if not isinstance(given[key], str):
                raise errors.InvalidData(f"content.{key} must be a string")
            content[key] = given[key]
    if content.get("reply_to"):
        _one_line(content["reply_to"], "content.reply_to")
        check_address_list(content["reply_to"], "content.reply_to", "Reply-To")
    if "subject" not in content:
        raise errors.RequiredFieldMissing("content.subject is a required field")
    if "html" not in content and "text" not in content:
        raise errors.RequiredFieldMissing("content.html or content.text is required")
    if "headers" in given:
        content["headers"] = _headers(given["headers"])
    return content


def normalize_options(raw: Any) -> dict[str, bool]:
    """``{open_tracking, click_tracking, transactional}``: booleans, only the ones given."""
    if not isinstance(raw, dict):
        raise errors.InvalidData("options must be an object")
    return bool_options(raw, OPTION_KEYS)


def is_empty_object(value: Any) -> bool:
    """An object whose values are all null: clients send those for "not given" (python-sparkpost does)."""
    return isinstance(value, dict) and all(item is None for item in value.values())
