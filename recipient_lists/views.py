"""``/api/v1/recipient-lists`` (SPEC B §3.3): parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from engage import errors
from engage.api.schema import operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, request_object, results
from recipient_lists import schemas
from recipient_lists.models import RecipientList
from recipient_lists.payload import list_create_input, list_update_input
from recipient_lists.selectors import recipient_list_get, recipient_list_list, recipient_list_recipients
from recipient_lists.services import recipient_list_create, recipient_list_delete, recipient_list_update

MANAGE = ("recipient_lists/manage",)
TAGS = ["recipient-lists"]


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
        given = list_create_input(request_object(request), max_errors=max_errors)
        assert given.recipients is not None  # required on create
        accepted, rcpt_errors, rejected = given.recipients
        recipient_list = recipient_list_create(
            list_id=given.list_id,
            name=given.name,
            description=given.description or "",
            attributes=given.attributes,
            recipients=accepted,
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
        given = list_update_input(request_object(request), list_id=list_id, max_errors=max_errors)
        parsed = given.recipients
        recipient_list = recipient_list_update(
            list_id=list_id,
            name=given.name,
            description=given.description,
            attributes=given.attributes,
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
