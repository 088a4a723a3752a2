"""``/api/v1/tracking-consent`` (SPEC A.5, "Tracking consent"; Engage's own resource): parse,
call one service or selector, render.

Every method needs the key's ``tracking_consent/manage`` grant (403 / 1100 without). A body
that is wrong answers 422 / 1300 (a field missing: 422 / 1400), naming the field; a query
parameter 400 / 1200; an address in the path that is not one 400 / 1300; an address the
register does not hold 404 / 1600. Paths name an address raw or percent-encoded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from rest_framework.request import Request
from rest_framework.response import Response

from consent import schemas
from consent.models import TrackingConsent
from consent.selectors import ConsentSearch, consent_history, consent_search
from consent.services import ConsentWrite, consent_delete, consent_record
from engage import errors
from engage.api.fields import iso
from engage.api.schema import operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, results
from mailcore.addresses import address_problem, mailbox_key

MANAGE = ("tracking_consent/manage",)
TAGS = ["tracking-consent"]
BASE = "/api/v1/tracking-consent"
RECORDED = "Tracking consent recorded"


def record_dict(record: TrackingConsent) -> dict[str, Any]:
    return {
        "recipient": record.recipient,
        "consent": record.consent,
        "source": record.source,
        "evidence": record.evidence,
        "recorded_at": iso(record.recorded_at),
    }


def _path_recipient(raw: str) -> str:
    """The address in the path, stored form. Errors: 400 / 1300 when it is not an address."""
    problem = address_problem(raw.strip())
    if problem is not None:
        raise errors.InvalidInput(f"The address in the path is not valid: '{raw[:254]}': {problem}")
    return mailbox_key(raw)


def _write(recipient: str, fields: schemas.ConsentFields) -> ConsentWrite:
    return ConsentWrite(recipient, fields.consent, fields.source or "", fields.evidence or "")


class ConsentListView(ApiView):
    grants = {"GET": MANAGE, "PUT": MANAGE}

    @operation(
        operation_id="tracking_consent_search",
        summary="Search the tracking consent register",
        description=(
            "The current consent of each address in the register, ordered by address; filters `consent`, "
            "`source`. Follow the `next` link for more."
        ),
        query=schemas.SearchQuery,
        response=schemas.SearchAnswer,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, schemas.SearchQuery)
        search = ConsentSearch(
            consent=query.consent, source=query.source, after=query.cursor, per_page=query.per_page or 1000
        )
        page, total, more = consent_search(query=search)
        links = []
        if more and page:
            kept = [(key, value) for key, value in request.query_params.items() if key != "cursor"]
            links.append({"href": f"{BASE}?{urlencode([*kept, ('cursor', page[-1].recipient)])}", "rel": "next"})
        return results([record_dict(record) for record in page], links=links, total_count=total)

    @operation(
        operation_id="tracking_consent_update",
        summary="Record tracking consent (bulk)",
        description=(
            "Up to 10,000 records in one transaction: all are written or none, in order (of two for one "
            "address the later is current). Each change is kept in the address's history."
        ),
        body=schemas.BulkPut,
        response=schemas.PutAnswer,
        tags=TAGS,
    )
    def put(self, request: Request) -> Response:
        body = parse_body(request, schemas.BulkPut)
        writes = []
        for index, item in enumerate(body.recipients):
            address: str = item.recipient
            if (problem := address_problem(address.strip())) is not None:
                raise errors.InvalidData(f"recipients[{index}].recipient: not a valid email address: {problem}")
            writes.append(_write(mailbox_key(address), item))
        consent_record(writes=writes)
        return results({"message": RECORDED, "count": len(writes)})


class ConsentEntryView(ApiView):
    grants = {"GET": MANAGE, "PUT": MANAGE, "DELETE": MANAGE}

    @operation(
        operation_id="tracking_consent_retrieve",
        summary="Retrieve one address's tracking consent and its history",
        description="The current state and every change, newest first; 404 when the register has none.",
        response=schemas.RetrieveAnswer,
        tags=TAGS,
    )
    def get(self, request: Request, recipient: str) -> Response:
        history = [record_dict(record) for record in consent_history(recipient=_path_recipient(recipient))]
        return results({**history[0], "history": history})

    @operation(
        operation_id="tracking_consent_put_one",
        summary="Record one address's tracking consent",
        description="A new record: the current state; the previous ones stay in the history.",
        body=schemas.SinglePut,
        response=schemas.PutAnswer,
        tags=TAGS,
    )
    def put(self, request: Request, recipient: str) -> Response:
        address = _path_recipient(recipient)
        fields = parse_body(request, schemas.SinglePut)
        consent_record(writes=[_write(address, fields)])
        return results({"message": RECORDED, "count": 1})

    @operation(
        operation_id="tracking_consent_delete",
        summary="Erase one address from the tracking consent register",
        description="Every record of the address, history included; the default applies again. 404 when none.",
        status=204,
        tags=TAGS,
    )
    def delete(self, request: Request, recipient: str) -> Response:
        consent_delete(recipient=_path_recipient(recipient))
        return no_content()
