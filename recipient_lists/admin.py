"""Admin for recipient lists: read-only, with the recipients of a list shown page by page
(issue 15, Deliver 5), and the ``sample/`` JSON page the template editor takes sample data
from (``templates_app.admin``; the browser fetches it, templates may not import lists)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path

from engage import errors
from recipient_lists.models import RecipientList
from recipient_lists.selectors import recipient_list_get, recipient_list_list, recipient_list_recipients_page

#: Recipients shown per page on a list's page.
RECIPIENTS_PER_PAGE = 100
#: Lists offered as sample data in the template editor.
SAMPLE_LISTS = 200


def _page_number(raw: str | None, last: int) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        number = 1
    return min(max(number, 1), max(last, 1))


def _row(number: int, recipient: dict[str, Any]) -> dict[str, Any]:
    """One recipient as the page shows it: its data as compact JSON (escaped by the template)."""
    address = recipient.get("address") or {}
    return {
        "number": number,
        "email": address.get("email", ""),
        "name": address.get("name") or "",
        "tags": ", ".join(recipient.get("tags") or []),
        "metadata": json.dumps(recipient.get("metadata") or {}, ensure_ascii=False)
        if recipient.get("metadata")
        else "",
        "substitution_data": json.dumps(recipient.get("substitution_data"), ensure_ascii=False)
        if recipient.get("substitution_data")
        else "",
    }


@admin.register(RecipientList)
class RecipientListAdmin(admin.ModelAdmin):
    """Read-only overview; lists are written through the API (recipients are stored in bulk)."""

    list_display = ["id", "name", "total_accepted_recipients", "updated_at"]
    search_fields = ["id", "name"]
    readonly_fields = [
        "id",
        "name",
        "description",
        "attributes",
        "total_accepted_recipients",
        "created_at",
        "updated_at",
    ]
    change_form_template = "admin/recipient_lists/recipientlist/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecipientList | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RecipientList | None = None) -> bool:
        return False  # deletes go through the API, which refuses lists in use

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list's fields, then one page of its recipients (``?page=``, 1-based,
        :data:`RECIPIENTS_PER_PAGE` each): one query for the page, none for the total (the
        list's ``total_accepted_recipients``)."""
        recipient_list = RecipientList.objects.filter(pk=object_id).first()
        extra = dict(extra_context or {})
        if recipient_list is not None:
            total = recipient_list.total_accepted_recipients
            last = -(-total // RECIPIENTS_PER_PAGE)
            number = _page_number(request.GET.get("page"), last)
            offset = (number - 1) * RECIPIENTS_PER_PAGE
            rows = recipient_list_recipients_page(list_id=recipient_list.pk, offset=offset, limit=RECIPIENTS_PER_PAGE)
            extra["recipients_page"] = {
                "rows": [_row(offset + index + 1, row) for index, row in enumerate(rows)],
                "number": number,
                "last": max(last, 1),
                "total": total,
                "previous": number - 1 if number > 1 else None,
                "next": number + 1 if number < last else None,
            }
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        sample = self.admin_site.admin_view(self.sample_view)
        return [path("sample/", sample, name="recipient_lists_recipientlist_sample")] + super().get_urls()

    def sample_view(self, request: HttpRequest) -> JsonResponse:
        """Sample data for the template editor. Without ``list``: ``{"lists": [{id, name,
        total}]}`` (the first :data:`SAMPLE_LISTS` by id). With ``list`` and ``index``
        (1-based): ``{"substitution_data": {...}, "address": {...}}``, the entry's metadata
        overlaid by its substitution data (SPEC B §4.2: recipient substitution data wins), or
        ``{"error": "..."}`` (404)."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "permission denied"}, status=403)
        list_id = request.GET.get("list")
        if not list_id:
            lists = recipient_list_list()[:SAMPLE_LISTS]
            return JsonResponse(
                {"lists": [{"id": x.pk, "name": x.name, "total": x.total_accepted_recipients} for x in lists]}
            )
        try:
            recipient_list_get(list_id=list_id)
        except errors.NotFound as exc:
            return JsonResponse({"error": exc.description}, status=404)
        index = _page_number(request.GET.get("index"), 2**31 - 1)
        rows = recipient_list_recipients_page(list_id=list_id, offset=index - 1, limit=1)
        if not rows:
            return JsonResponse({"error": f"List '{list_id}' has no entry {index}"}, status=404)
        recipient = rows[0]
        data = {**(recipient.get("metadata") or {}), **(recipient.get("substitution_data") or {})}
        return JsonResponse({"substitution_data": data, "address": recipient.get("address") or {}})
