"""``/api/v1/transmissions`` (SPEC B §1): parse, call one service or selector, render."""

from __future__ import annotations

import re

from rest_framework.request import Request
from rest_framework.response import Response

from engage import errors
from engage.api.schema import operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, request_object, results
from transmissions import schemas
from transmissions.selectors import transmission_detail, transmission_list
from transmissions.services import transmission_cancel, transmission_create

VIEW = ("transmissions/view", "transmissions/modify")
MODIFY = ("transmissions/modify",)
TAGS = ["transmissions"]

# ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses.
_ID = re.compile(r"[0-9]{1,19}")


def parse_transmission_id(raw: str) -> int:
    """Ids are numeric strings; anything else cannot name a transmission (404 / 1600)."""
    if not _ID.fullmatch(raw) or int(raw) >= 1 << 63:
        raise errors.NotFound(f"Resource not found:transmission id {raw}")
    return int(raw)


class TransmissionListView(ApiView):
    grants = {"GET": VIEW, "POST": MODIFY}

    @operation(
        operation_id="transmissions_list",
        summary="List transmissions",
        query=schemas.TransmissionListQuery,
        response=schemas.TransmissionListResponse,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, schemas.TransmissionListQuery)
        return results(transmission_list(campaign_id=query.campaign_id, template_id=query.template_id))

    @operation(
        operation_id="transmissions_create",
        summary="Create a transmission",
        body=schemas.TransmissionCreate,
        query=schemas.TransmissionCreateQuery,
        response=schemas.TransmissionCreateResponse,
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        parse_body(request, schemas.TransmissionCreate)
        query = parse_query(request, schemas.TransmissionCreateQuery)
        created = transmission_create(body=request_object(request), max_rcpt_errors=query.num_rcpt_errors)
        body = {
            "total_rejected_recipients": created.rejected,
            "total_accepted_recipients": created.accepted,
            "id": str(created.transmission_id),
        }
        if created.rejected:
            body = {"rcpt_to_errors": created.rcpt_errors, **body}
            return results(body, errors=[errors.TransmissionValidation().as_dict()])
        return results(body)


class TransmissionDetailView(ApiView):
    grants = {"GET": VIEW, "DELETE": MODIFY}

    @operation(
        operation_id="transmissions_retrieve",
        summary="Retrieve a transmission",
        response=schemas.TransmissionDetailResponse,
        tags=TAGS,
    )
    def get(self, request: Request, transmission_id: str) -> Response:
        return results({"transmission": transmission_detail(transmission_id=parse_transmission_id(transmission_id))})

    @operation(
        operation_id="transmissions_delete",
        summary="Cancel a scheduled transmission",
        status=204,
        tags=TAGS,
    )
    def delete(self, request: Request, transmission_id: str) -> Response:
        transmission_cancel(transmission_id=parse_transmission_id(transmission_id))
        return no_content()
