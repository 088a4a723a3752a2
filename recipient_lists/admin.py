"""Admin for recipient lists: create and edit a list with its recipients uploaded as CSV or
pasted (``recipient_lists.upload``), its recipients shown page by page (issue 15, Deliver 5),
and the ``sample/`` JSON page the template editor takes sample data from
(``templates_app.admin``; the browser fetches it, templates may not import lists).

The form is checked as ``POST``/``PUT /api/v1/recipient-lists`` check a body (the declaration,
then ``recipient_lists.payload``) and stored by the same services; unlike the API, a form with
one rejected recipient stores nothing and names the row of each. A list is deleted (its page's
Delete, or "Delete selected") by the service of ``DELETE /api/v1/recipient-lists/{id}``, which
refuses a list in use (a transmission with it scheduled or generating): the admin says so.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import actions
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import URLPattern, path, reverse

from engage import errors
from engage.api.schema import parse_object
from recipient_lists import schemas
from recipient_lists.models import RecipientList
from recipient_lists.payload import ListInput, Parsed, list_create_input, list_update_input, require_one_valid
from recipient_lists.recipients import normalize_recipient
from recipient_lists.selectors import (
    recipient_list_get,
    recipient_list_in_use,
    recipient_list_list,
    recipient_list_recipients_page,
)
from recipient_lists.services import recipient_list_create, recipient_list_delete, recipient_list_update
from recipient_lists.upload import UploadError, read_recipients

#: Why the admin refused to delete a list (the rule is ``recipient_list_delete``'s).
IN_USE_HELP = (
    "A list is in use while a transmission with it is scheduled or generating; it can be deleted once that "
    "transmission has finished or been canceled."
)
#: Recipients shown per page on a list's page.
RECIPIENTS_PER_PAGE = 100
#: Lists offered as sample data in the template editor.
SAMPLE_LISTS = 200
#: Rejected recipients named on the form; the rest are counted.
ERRORS_SHOWN = 20
_INDEX = re.compile(r"^recipients\[([0-9]+)\]: ")
#: The form field an API error is about, by the first word of its description.
_FIELD_OF = {"id": "id", "name": "name", "description": "description"}

RECIPIENTS_HELP = (
    "Upload a CSV file or paste below, one recipient a line: <code>ada@example.com</code>, "
    "<code>Ada &lt;ada@example.com&gt;</code> or <code>ada@example.com,Ada</code>. A first line naming "
    "the columns (<code>email,name,first_name,plan</code>) makes every other column substitution data "
    "of each recipient. Or paste a JSON array of SparkPost recipient objects "
    "(<code>[{&quot;address&quot;: {&quot;email&quot;: ...}, &quot;substitution_data&quot;: {...}}]</code>), "
    "as <code>POST /api/v1/recipient-lists</code> takes them. "
    "A name (the <code>name</code> column, or <code>Ada &lt;ada@example.com&gt;</code>) is the recipient's "
    "display name, shown in the To: header. In a template, write <code>{{address.name}}</code> for it and "
    "<code>{{address.email}}</code> for the address (as SparkPost); any other column is "
    "<code>{{first_name}}</code>, <code>{{plan}}</code>..."
)


def size_label(limit: int) -> str:
    """``52428800`` → ``"50 MB"`` (1 MB = 2**20 bytes, as ``ENGAGE_MAX_REQUEST_BYTES`` is set),
    ``"1500 bytes"`` below 1 MB or when not a whole number of MB (so never rounded up)."""
    mb = 1024 * 1024
    return f"{limit // mb} MB" if limit >= mb and limit % mb == 0 else f"{limit} bytes"


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


def _field_of(exc: errors.EngageError) -> str | None:
    first = re.split(r"[\s:.]", exc.description, maxsplit=1)[0]
    return _FIELD_OF.get(first)


class RecipientListForm(forms.ModelForm):
    """A list's id (new lists only; made from the name when empty), name, description and
    recipients (a file or pasted text: :data:`RECIPIENTS_HELP`), checked in :meth:`clean` by
    the API's code into :attr:`checked`, which ``save_model`` stores with the API's services."""

    id = forms.CharField(
        label="Id",
        required=False,
        strip=False,
        help_text="Optional: made from the name when empty. Cannot change later.",
    )
    name = forms.CharField(label="Name", required=False, help_text="At most 64 bytes; the id when empty.")
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="At most 1024 bytes."
    )
    recipients_file = forms.FileField(label="Recipients file", required=False)
    recipients_text = forms.CharField(
        label="Recipients", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 10, "cols": 80}),
        help_text=RECIPIENTS_HELP,
    )  # fmt: skip

    class Meta:
        model = RecipientList
        fields = ["id", "name", "description"]

    checked: ListInput | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.ENGAGE_MAX_REQUEST_BYTES
        self.fields[
            "recipients_file"
        ].help_text = f"A .csv or .json file in UTF-8, at most {size_label(limit)} (the API's limit)."
        if not self.instance._state.adding:
            self.fields["recipients_text"].help_text = (
                f"Leave empty (and no file) to keep the {self.instance.total_accepted_recipients} recipients; "
                "anything given replaces them. " + RECIPIENTS_HELP
            )

    def _text(self) -> str | None:
        """The recipients' text, from the file or the box (not both), or None when neither."""
        upload: UploadedFile | None = self.cleaned_data.get("recipients_file")
        typed = self.cleaned_data.get("recipients_text") or ""
        if upload is not None and typed.strip():
            raise forms.ValidationError("Upload a file or paste recipients, not both.")
        if upload is None:
            return typed if typed.strip() else None
        limit = settings.ENGAGE_MAX_REQUEST_BYTES
        if upload.size is not None and upload.size > limit:
            raise forms.ValidationError(
                {"recipients_file": f"The file is over the API's limit of {size_label(limit)}."}
            )
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError({"recipients_file": "The file is not UTF-8 text."}) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        text = self._text()
        adding = self.instance._state.adding
        if text is None and adding:
            raise forms.ValidationError("Give the list its recipients: upload a file or paste them.")
        if text is not None and len(text.encode()) > settings.ENGAGE_MAX_REQUEST_BYTES:
            raise forms.ValidationError(
                f"The recipients are over the API's limit of {size_label(settings.ENGAGE_MAX_REQUEST_BYTES)}."
            )
        read = self._recipients(text) if text is not None else None
        del text  # the raw upload is not needed any more (memory: see _recipients)
        body: dict[str, Any] = {
            "name": cleaned.get("name") or None,
            "description": cleaned.get("description") if not adding else cleaned.get("description") or None,
            # judged row by row by _recipients; the declaration only checks that it is an array
            "recipients": [] if read is not None else None,
        }
        try:
            if adding:
                body["id"] = cleaned.get("id") or None
                parse_object(body, schemas.RecipientListCreate)
                checked = list_create_input(body, max_errors=None)
            else:
                parse_object(body, schemas.RecipientListUpdate)
                checked = list_update_input(body, list_id=self.instance.pk, max_errors=None)
                if recipient_list_in_use(list_id=self.instance.pk):
                    raise errors.ResourceInUse(f"List '{self.instance.pk}' is in use by msg generation")
            if read is not None:
                parsed, shown = read
                checked = dataclasses.replace(checked, recipients=parsed)
                if parsed[2]:
                    require_one_valid(parsed)
                    raise forms.ValidationError({"recipients_text": [*shown, "Nothing was saved."]})
        except errors.NoValidRecipients as exc:
            assert read is not None  # only recipients given can all be rejected
            raise forms.ValidationError(
                {"recipients_text": [exc.description.split(";", 1)[0], *read[1], "Nothing was saved."]}
            ) from None
        except errors.EngageError as exc:
            raise forms.ValidationError({_field_of(exc) or NON_FIELD_ERRORS: exc.description}) from None
        self.checked = checked
        return cleaned

    @staticmethod
    def _recipients(text: str) -> tuple[Parsed, list[str]]:
        """The recipients of ``text`` judged one by one as they are read, by the API's
        ``normalize_recipient``: ``((accepted, rcpt_to_errors[:1], rejected count), the reasons
        shown)``, each reason named by its line or entry (the API names its index), the first
        :data:`ERRORS_SHOWN` then a count. A text that cannot be read, or holds no recipient,
        raises ``forms.ValidationError`` on ``recipients_text``.

        Memory: only the normalized recipients are kept (CSV is read a row at a time, a raw
        row dropped once judged). A 100,000-row, 4.9 MB CSV (email, name, two data columns),
        under tracemalloc: ``clean`` peaked at 138 MB and the whole add request at 172 MB
        before (raw and normalized copies of every row, then every row as a model instance
        at once in ``bulk_create``); after, 116 MB and 132 MB (``recipient_lists.services``
        stores a batch at a time). What stays is the normalized rows, about 0.9 kB each.
        """
        count, rejected = 0, 0
        accepted: list[dict] = []
        first_error: list[dict] = []
        shown: list[str] = []
        try:
            unit, rows = read_recipients(text)
            for index, (number, raw) in enumerate(rows):
                count += 1
                recipient, error = normalize_recipient(raw, index)
                if recipient is not None:
                    accepted.append(recipient)
                    continue
                assert error is not None  # no recipient: an error
                rejected += 1
                if not first_error:
                    first_error.append(error.as_dict())
                if len(shown) < ERRORS_SHOWN:
                    found = _INDEX.match(error.description)
                    rest = error.description[found.end() :] if found is not None else error.description
                    shown.append(f"{unit} {number}: {rest}")
        except UploadError as exc:
            raise forms.ValidationError({"recipients_text": str(exc)}) from None
        if not count:
            said = "the first line names the columns but no line follows" if unit == "line" else "the array is empty"
            raise forms.ValidationError({"recipients_text": f"No recipients: {said}. Nothing was saved."})
        if rejected > ERRORS_SHOWN:
            shown.append(f"and {rejected - ERRORS_SHOWN} more")
        return (accepted, first_error, rejected), shown


@admin.register(RecipientList)
class RecipientListAdmin(admin.ModelAdmin):
    """Lists created and edited through the API's checks and services (:class:`RecipientListForm`)."""

    form = RecipientListForm
    list_display = ["id", "name", "total_accepted_recipients", "updated_at"]
    search_fields = ["id", "name"]
    change_form_template = "admin/recipient_lists/recipientlist/change_form.html"

    def get_fields(self, request: HttpRequest, obj: RecipientList | None = None) -> Any:
        shown = ["name", "description"] if obj is not None else ["id", "name", "description"]
        stored = (
            ["id", "attributes", "total_accepted_recipients", "created_at", "updated_at"] if obj is not None else []
        )
        return [*stored[:1], *shown, *stored[1:], "recipients_file", "recipients_text"]

    def get_readonly_fields(self, request: HttpRequest, obj: RecipientList | None = None) -> Any:
        return ["id", "attributes", "total_accepted_recipients", "created_at", "updated_at"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: RecipientList, form: RecipientListForm, change: bool) -> None:
        """Store what the form checked with the API's services, then show the stored row."""
        checked = form.checked
        assert checked is not None  # a valid form
        accepted = checked.recipients[0] if checked.recipients is not None else None
        if change:
            saved = recipient_list_update(
                list_id=obj.pk, name=checked.name, description=checked.description, recipients=accepted
            )
        else:
            assert accepted is not None  # required on create
            saved = recipient_list_create(
                list_id=checked.list_id, name=checked.name, description=checked.description or "", recipients=accepted
            )
        for field in (
            "id",
            "name",
            "description",
            "attributes",
            "total_accepted_recipients",
            "created_at",
            "updated_at",
        ):
            setattr(obj, field, getattr(saved, field))
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related: the recipients were stored by ``save_model``'s service."""

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except errors.EngageError as exc:  # a race the form could not see: the id taken, the list in use
            messages.error(request, f"Not saved: {exc.description}")
            return HttpResponseRedirect(request.get_full_path())

    actions = ["delete_selected"]  # Django's, through delete_queryset, refusing lists in use

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[str], dict[str, int], set, list]:
        """What the delete pages say goes: each list with its number of recipients, read from
        the lists (Django's default would load and name every recipient). Nothing is
        "protected" here: the service decides, and refuses a list in use."""
        lists = list(objs)
        shown = [f"Recipient list: {x} ({x.total_accepted_recipients} recipients)" for x in lists]
        count = {"recipient lists": len(lists), "recipients": sum(x.total_accepted_recipients for x in lists)}
        return shown, count, set(), []

    def delete_model(self, request: HttpRequest, obj: RecipientList) -> None:
        recipient_list_delete(list_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RecipientList]) -> None:
        """Each list by the API's service: one in use raises ``ResourceInUse`` (409 / 1602), and
        :meth:`delete_selected` undoes the lists deleted before it."""
        for list_id in queryset.order_by("pk").values_list("pk", flat=True):
            recipient_list_delete(list_id=list_id)

    def _refused(self, request: HttpRequest, said: str) -> None:
        self.message_user(request, f"{said} {IN_USE_HELP}", messages.ERROR)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Django's confirmation and delete, the list deleted by ``recipient_list_delete``. A
        list in use is refused on its own page, before the confirmation when it is already in
        use, else when the service refuses it (Django's transaction undoes the log entry)."""
        list_id = unquote(object_id)
        change = reverse("admin:recipient_lists_recipientlist_change", args=[object_id])
        if self.has_delete_permission(request) and recipient_list_in_use(list_id=list_id):
            self._refused(request, f"Recipient list '{list_id}' was not deleted: it is in use.")
            return HttpResponseRedirect(change)
        try:
            return super().delete_view(request, object_id, extra_context)
        except errors.ResourceInUse as exc:  # came into use since the confirmation page
            self._refused(request, f"Recipient list '{list_id}' was not deleted: {exc.description}.")
            return HttpResponseRedirect(change)

    @admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[RecipientList]) -> HttpResponse | None:
        """Django's "delete selected", all or nothing: lists in use are named instead of the
        confirmation page; one that came into use since refuses them all (the deletes and
        their log entries are undone together)."""
        busy = [list_id for list_id in queryset.order_by("pk").values_list("pk", flat=True)
                if recipient_list_in_use(list_id=list_id)]  # fmt: skip
        if busy:
            names = ", ".join(f"'{list_id}'" for list_id in busy)
            plural = len(busy) > 1
            self._refused(
                request,
                f"Nothing was deleted: recipient list{'s' if plural else ''} {names} {'are' if plural else 'is'} in use.",
            )
            return None
        try:
            with transaction.atomic():
                return actions.delete_selected(self, request, queryset)
        except errors.ResourceInUse as exc:
            self._refused(request, f"Nothing was deleted: {exc.description}.")
            return None

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
