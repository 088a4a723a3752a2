"""``/api/v1/suppression-list`` (SPEC A.5, B §11.4): parse, call one service or selector, render.

Paths name an address raw (``a+b@x.test``) or percent-encoded (``a%2Bb%40x.test``); both
reach the view decoded, and ``+`` stays a plus. Bodies that are wrong answer 400 / 1300 (as
SparkPost's did), query parameters 400 / 1200, an unknown entry 404 / 1600, a ``Compliance``
entry 403 / 1100; the key needs ``suppression_lists/manage`` for every method.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from rest_framework.request import Request
from rest_framework.response import Response

from engage import errors
from engage.api.fields import iso
from engage.api.schema import ModelT, operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, results
from mailcore.cursors import cursor_encode
from suppression import schemas, search
from suppression.entries import bulk_writes, path_recipient, single_writes
from suppression.models import SuppressionEntry
from suppression.selectors import suppression_get, suppression_search, suppression_summary
from suppression.services import suppression_delete, suppression_put

MANAGE = ("suppression_lists/manage",)
TAGS = ["suppression-list"]
BASE = "/api/v1/suppression-list"
UPDATED = {"message": "Suppression List successfully updated"}


def entry_dict(entry: SuppressionEntry) -> dict[str, Any]:
    """The current shape, with the legacy boolean that matches ``type`` (SPEC A.5)."""
    return {
        "recipient": entry.recipient,
        "type": entry.type,
        "source": entry.source,
        "description": entry.description,
        "created": iso(entry.created),
        "updated": iso(entry.updated),
        entry.type: True,
    }


def _pairs(request: Request) -> list[tuple[str, str]]:
    return [(key, value) for key, values in request.query_params.lists() for value in values]


def _search_query(pairs: list[tuple[str, str]]) -> search.SearchQuery:
    try:
        return search.parse_search(pairs)
    except search.ParamError as exc:
        raise errors.InvalidParams(str(exc)) from None


def _body(request: Request, model: type[ModelT]) -> ModelT:
    """``parse_body`` answering 400 / 1300 (SparkPost's status here) instead of 422."""
    try:
        return parse_body(request, model)
    except (errors.InvalidData, errors.RequiredFieldMissing) as exc:
        raise errors.InvalidInput(exc.description) from None


def _links(
    pairs: list[tuple[str, str]], query: search.SearchQuery, page: list[SuppressionEntry], more: bool
) -> list[dict[str, str]]:
    """``first`` and ``next`` as ``{href, rel}``; ``[]`` when the first page holds everything."""
    if not more and query.after is None:
        return []
    kept = [(key, value) for key, value in pairs if key != "cursor"]
    links = [{"href": f"{BASE}?{urlencode([*kept, ('cursor', 'initial')])}", "rel": "first"}]
    if more and page:
        cursor = cursor_encode(page[-1].updated, page[-1].pk)
        links.append({"href": f"{BASE}?{urlencode([*kept, ('cursor', cursor)])}", "rel": "next"})
    return links


class SuppressionListView(ApiView):
    grants = {"GET": MANAGE, "PUT": MANAGE}

    @operation(
        operation_id="suppression_list_search",
        summary="Search the suppression list",
        description=(
            "Entries by `updated`, newest first (cursor paging: follow the `next` link). Filters: from, to "
            "(inclusive, UTC unless an offset is given), types, sources, description (substring). "
            "`limit` is the legacy name of `per_page`."
        ),
        query=schemas.SearchQuery,
        response=schemas.SearchAnswer,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        parse_query(request, schemas.SearchQuery)
        pairs = _pairs(request)
        query = _search_query(pairs)
        page, total, more = suppression_search(query=query)
        return results([entry_dict(entry) for entry in page], links=_links(pairs, query, page, more), total_count=total)

    @operation(
        operation_id="suppression_list_update",
        summary="Add or update suppression entries (bulk)",
        description=(
            "Up to 10,000 entries in one transaction: all are written or none. Each entry gives `recipient` "
            "(or `email`) and `type` (or the legacy booleans). Entries are `Manually Added`; an entry whose "
            "source is `Compliance` cannot be changed (403)."
        ),
        body=schemas.BulkPut,
        response=schemas.PutAnswer,
        tags=TAGS,
    )
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict) or not isinstance(request.data.get("recipients"), list):
            raise errors.InvalidInput("PUT body must contain an array of recipients")
        body = _body(request, schemas.BulkPut)
        suppression_put(writes=bulk_writes(body.recipients))
        return results(UPDATED)


class SuppressionSummaryView(ApiView):
    grants = {"GET": MANAGE}

    @operation(
        operation_id="suppression_list_summary",
        summary="Count suppression entries by source and type",
        response=schemas.SummaryAnswer,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return results(suppression_summary())


class SuppressionEntryView(ApiView):
    grants = {"GET": MANAGE, "PUT": MANAGE, "DELETE": MANAGE}

    @operation(
        operation_id="suppression_list_retrieve",
        summary="Retrieve one address's suppression entries",
        description="One entry per type (narrowed by `types`); 404 when there is none.",
        query=schemas.RetrieveQuery,
        response=schemas.SearchAnswer,
        tags=TAGS,
    )
    def get(self, request: Request, recipient: str) -> Response:
        parse_query(request, schemas.RetrieveQuery)
        address = path_recipient(recipient)
        types = _search_query([pair for pair in _pairs(request) if pair[0].startswith("types")]).types
        found = suppression_get(recipient=address, types=types)
        return results([entry_dict(entry) for entry in found], links=[], total_count=len(found))

    @operation(
        operation_id="suppression_list_put_one",
        summary="Add or update one address's suppression entry",
        description=(
            "`type` (or the legacy booleans: `true` adds that type, `false` changes nothing). "
            "An entry whose source is `Compliance` cannot be changed (403)."
        ),
        body=schemas.SinglePut,
        response=schemas.PutAnswer,
        tags=TAGS,
    )
    def put(self, request: Request, recipient: str) -> Response:
        address = path_recipient(recipient)
        fields = _body(request, schemas.SinglePut)
        suppression_put(writes=single_writes(address, fields))
        return results(UPDATED)

    @operation(
        operation_id="suppression_list_delete",
        summary="Remove one address from the suppression list",
        description=(
            'Both types, or only the one named by an optional body `{"type": ...}`. 404 when nothing matched; '
            "403 for a `Compliance` entry."
        ),
        body=schemas.DeleteBody,
        status=204,
        tags=TAGS,
    )
    def delete(self, request: Request, recipient: str) -> Response:
        address = path_recipient(recipient)
        body = _body(request, schemas.DeleteBody)
        suppression_delete(recipient=address, type=body.type)
        return no_content()
