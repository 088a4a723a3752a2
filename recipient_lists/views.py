"""``/api/v1/recipient-lists`` (SPEC B §3.3): parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from engage import errors
from engage.api.fields import text_field
from engage.api.schema import operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, request_object, results
from mailcore.ids import MAX_ID_BYTES
from recipient_lists import schemas
from recipient_lists.models import RecipientList
from recipient_lists.recipients import normalize_recipients
from recipient_lists.selectors import recipient_list_get, recipient_list_list, recipient_list_recipients
from recipient_lists.services import recipient_list_create, recipient_list_delete, recipient_list_update

MANAGE = ("recipient_lists/manage",)
RESERVED_PREFIX = "rcptlist_"
MAX_NAME_BYTES = schemas.MAX_LIST_NAME_BYTES
MAX_DESCRIPTION_BYTES = schemas.MAX_LIST_DESCRIPTION_BYTES
TAGS = ["recipient-lists"]


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


def parse_recipients(body: dict, *, max_errors: int | None) -> tuple[list[dict], list[dict], int] | None:
    """``(accepted, rcpt_to_errors, rejected_count)``, or None when no recipients were sent."""
    raw = body.get("recipients")
    if raw is None:
        return None
    return normalize_recipients(raw, max_errors=max_errors)


def require_one_valid(parsed: tuple[list[dict], list[dict], int] | None) -> None:
    """400 / 5002 when recipients were sent and none is valid, saying why the first was not."""
    if parsed is not None and not parsed[0] and parsed[1]:
        first = parsed[1][0].get("description", "")
        raise errors.NoValidRecipients(f"At least one valid recipient is required; {first}")


def counted(data: dict[str, Any], rcpt_errors: list[dict], rejected: int, accepted: int) -> Response:
    """Counts in the results; with rejections, ``rcpt_to_errors`` and a top-level 5000 error (200)."""
    data.update({"total_rejected_recipients": rejected, "total_accepted_recipients": accepted})
    if rejected:
        data["rcpt_to_errors"] = rcpt_errors
        return results(data, errors=[errors.ListCreatedWithErrors().as_dict()])
    return results(data)


def list_summary(recipient_list: RecipientList) -> dict[str, Any]:
    return {
        "id": recipient_list.id,
        "name": recipient_list.name,
        "description": recipient_list.description,
        "attributes": recipient_list.attributes,
        "total_accepted_recipients": recipient_list.total_accepted_recipients,
    }


class RecipientListListView(ApiView):
    grants = {"GET": MANAGE, "POST": MANAGE}

    @operation(
        operation_id="recipient_lists_list",
        summary="List recipient lists",
        response=schemas.RecipientListListResponse,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return results([list_summary(recipient_list) for recipient_list in recipient_list_list()])

    @operation(
        operation_id="recipient_lists_create",
        summary="Create a recipient list",
        body=schemas.RecipientListCreate,
        query=schemas.RcptErrorsQuery,
        response=schemas.RecipientListWriteResponse,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        parse_body(request, schemas.RecipientListCreate)
        max_errors = parse_query(request, schemas.RcptErrorsQuery).num_rcpt_errors
        body = request_object(request)
        list_id = parse_list_id(body)
        name = text_field(body, "name", max_bytes=MAX_NAME_BYTES)
        description = text_field(body, "description", max_bytes=MAX_DESCRIPTION_BYTES) or ""
        attributes = parse_attributes(body)
        parsed = parse_recipients(body, max_errors=max_errors)
        if parsed is None:
            raise errors.RequiredFieldMissing("recipients is a required field")
        require_one_valid(parsed)
        accepted, rcpt_errors, rejected = parsed
        recipient_list = recipient_list_create(
            list_id=list_id, name=name, description=description, attributes=attributes, recipients=accepted
        )
        return counted({"id": recipient_list.id, "name": recipient_list.name}, rcpt_errors, rejected, len(accepted))


class RecipientListDetailView(ApiView):
    grants = {"GET": MANAGE, "PUT": MANAGE, "DELETE": MANAGE}

    @operation(
        operation_id="recipient_lists_retrieve",
        summary="Retrieve a recipient list",
        query=schemas.RetrieveQuery,
        response=schemas.RecipientListResponse,
        tags=TAGS,
    )
    def get(self, request: Request, list_id: str) -> Response:
        show_recipients = parse_query(request, schemas.RetrieveQuery).show_recipients
        data = list_summary(recipient_list_get(list_id=list_id))
        if show_recipients:
            data["recipients"] = recipient_list_recipients(list_id=list_id)
        return results(data)

    @operation(
        operation_id="recipient_lists_update",
        summary="Update a recipient list",
        body=schemas.RecipientListUpdate,
        query=schemas.RcptErrorsQuery,
        response=schemas.RecipientListWriteResponse,
        tags=TAGS,
    )
    def put(self, request: Request, list_id: str) -> Response:
        parse_body(request, schemas.RecipientListUpdate)
        max_errors = parse_query(request, schemas.RcptErrorsQuery).num_rcpt_errors
        body = request_object(request)
        body_id = body.get("id")
        if body_id is not None and body_id != list_id:
            raise errors.InvalidData(f"The id in the body ('{body_id}') does not match the id in the URI ('{list_id}')")
        name = text_field(body, "name", max_bytes=MAX_NAME_BYTES)
        description = text_field(body, "description", max_bytes=MAX_DESCRIPTION_BYTES)
        attributes = parse_attributes(body)
        parsed = parse_recipients(body, max_errors=max_errors)
        require_one_valid(parsed)
        recipient_list = recipient_list_update(
            list_id=list_id,
            name=name,
            description=description,
            attributes=attributes,
            recipients=parsed[0] if parsed is not None else None,
        )
        data = {"id": recipient_list.id, "name": recipient_list.name}
        if parsed is None:
            return results(data)
        accepted, rcpt_errors, rejected = parsed
        return counted(data, rcpt_errors, rejected, len(accepted))

    @operation(operation_id="recipient_lists_delete", summary="Delete a recipient list", status=204, tags=TAGS)
    def delete(self, request: Request, list_id: str) -> Response:
        recipient_list_delete(list_id=list_id)
        return no_content()
