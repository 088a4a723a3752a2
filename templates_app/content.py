"""Validation of a template's ``content`` and ``options`` (SPEC B §2.1, §1.3): PURE.

Everything the caller needs is passed in (the size limit included); failures are
``EngageError`` subclasses so views need no translation. Null values mean "not given" and
unknown keys are ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engage import errors
from engage.api.fields import bool_options
from recipient_lists.recipients import split_address

OPTION_KEYS = ("open_tracking", "click_tracking", "transactional")
STRING_PARTS = ("subject", "html", "text", "amp_html", "reply_to")
FORBIDDEN_HEADERS = {"content-type", "content-transfer-encoding"}
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 §2.2)


def _given(mapping: dict) -> dict:
    return {key: value for key, value in mapping.items() if value is not None}


def normalize_from(value: Any) -> dict[str, str]:
    """``"addr"``, ``"Name <addr>"`` or ``{"email", "name"}`` → ``{"email", "name"?}``."""
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
        if not _HEADER_NAME.match(name):
            raise errors.InvalidHeader(f"'{name}' is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise errors.InvalidHeader(f"The {name} header cannot be set in content.headers")
        if "\r" in header_value or "\n" in header_value:
            raise errors.InvalidHeader(f"The value of header {name} must not contain line breaks")
        headers[name] = header_value
    return headers


def normalize_content(raw: Any, *, max_bytes: int) -> dict[str, Any]:
    """A stored template's content: validated, nulls dropped, ``from`` as an object.

    Inline content needs ``from``, ``subject`` and one of ``html``/``text`` (422 1400 naming
    the field); ``email_rfc822`` must come alone (422 1301 otherwise).
    """
    if not isinstance(raw, dict):
        raise errors.InvalidData("content must be an object")
    given = _given(raw)
    if len(json.dumps(given, ensure_ascii=False).encode("utf-8")) > max_bytes:
        raise errors.InvalidData(f"content is larger than {max_bytes} bytes")

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
