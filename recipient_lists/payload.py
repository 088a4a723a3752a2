"""The checks of a recipient list write (SPEC B §3.3), once for every edge that writes lists:
the REST views (``POST``/``PUT /api/v1/recipient-lists``) and the admin's list form. Each takes
the body a client would send, once the edge has checked it against its declaration
(``recipient_lists.schemas``, with ``engage.api.schema.parse_body`` or ``parse_object``), and
raises the API's errors: the byte limits and the id rules, then each recipient judged on its
own (``normalize_recipients``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engage import errors
from engage.api.fields import text_field
from mailcore.ids import MAX_ID_BYTES
from recipient_lists import schemas
from recipient_lists.recipients import normalize_recipients

RESERVED_PREFIX = "rcptlist_"
MAX_NAME_BYTES = schemas.MAX_LIST_NAME_BYTES
MAX_DESCRIPTION_BYTES = schemas.MAX_LIST_DESCRIPTION_BYTES

#: ``(accepted recipients, rcpt_to_errors, rejected count)``.
Parsed = tuple[list[dict], list[dict], int]


@dataclass(frozen=True, slots=True)
class ListInput:
    """A checked list write: ``None`` is "not given" (``recipients`` too)."""

    list_id: str | None
    name: str | None
    description: str | None
    attributes: dict[str, Any] | None
    recipients: Parsed | None


def parse_list_id(body: dict) -> str | None:
    list_id = text_field(body, "id", max_bytes=MAX_ID_BYTES)
    if list_id is None:
        return None
    if not list_id.strip() or "/" in list_id or any(ch.isspace() or ord(ch) < 32 for ch in list_id):
        raise errors.InvalidData("id must be a non-empty string without spaces or '/'")
    if list_id.startswith(RESERVED_PREFIX):
        raise errors.InvalidData(f"List id '{list_id}' cannot start with '{RESERVED_PREFIX}'")
    return list_id


def parse_attributes(body: dict) -> dict[str, Any] | None:
    attributes = body.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise errors.InvalidData("attributes must be an object")
    return attributes


def parse_recipients(body: dict, *, max_errors: int | None) -> Parsed | None:
    """``(accepted, rcpt_to_errors, rejected_count)``, or None when no recipients were sent."""
    raw = body.get("recipients")
    if raw is None:
        return None
    return normalize_recipients(raw, max_errors=max_errors)


def require_one_valid(parsed: Parsed | None) -> None:
    """400 / 5002 when recipients were sent and none is valid, saying why the first was not."""
    if parsed is not None and not parsed[0] and parsed[1]:
        first = parsed[1][0].get("description", "")
        raise errors.NoValidRecipients(f"At least one valid recipient is required; {first}")


def _given(body: dict) -> dict:
    return {key: value for key, value in body.items() if value is not None}


def list_create_input(body: dict, *, max_errors: int | None) -> ListInput:
    """A new list's body (``POST /api/v1/recipient-lists``): ``recipients`` is required; 400 /
    5002 when none of them is valid. ``description`` not given is ``""``."""
    body = _given(body)
    list_id = parse_list_id(body)
    name = text_field(body, "name", max_bytes=MAX_NAME_BYTES)
    description = text_field(body, "description", max_bytes=MAX_DESCRIPTION_BYTES) or ""
    attributes = parse_attributes(body)
    parsed = parse_recipients(body, max_errors=max_errors)
    if parsed is None:
        raise errors.RequiredFieldMissing("recipients is a required field")
    require_one_valid(parsed)
    return ListInput(list_id, name, description, attributes, parsed)


def list_update_input(body: dict, *, list_id: str, max_errors: int | None) -> ListInput:
    """The fields to change of list ``list_id`` (``PUT /api/v1/recipient-lists/{id}``): an
    ``id`` in the body must be ``list_id``; 400 / 5002 when recipients were sent and none is
    valid."""
    body = _given(body)
    body_id = body.get("id")
    if body_id is not None and body_id != list_id:
        raise errors.InvalidData(f"The id in the body ('{body_id}') does not match the id in the URI ('{list_id}')")
    name = text_field(body, "name", max_bytes=MAX_NAME_BYTES)
    description = text_field(body, "description", max_bytes=MAX_DESCRIPTION_BYTES)
    attributes = parse_attributes(body)
    parsed = parse_recipients(body, max_errors=max_errors)
    require_one_valid(parsed)
    return ListInput(list_id, name, description, attributes, parsed)
