"""The suppression list in the admin (SPEC A.5): search, add, change, remove. Staff may set
any source here, ``Compliance`` included; the API cannot change or remove those entries."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from mailcore.addresses import mailbox_key
from suppression.entries import recipient_problem
from suppression.models import MAX_DESCRIPTION_BYTES, SuppressionEntry


class SuppressionEntryForm(forms.ModelForm):
    class Meta:
        model = SuppressionEntry
        fields = ["recipient", "type", "source", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_recipient(self) -> str:
        raw = self.cleaned_data["recipient"]
        problem = recipient_problem(raw)
        if problem is not None:
            raise forms.ValidationError(problem)
        return mailbox_key(raw)

    def clean_description(self) -> str:
        value = self.cleaned_data.get("description") or ""
        if len(value.encode("utf-8")) > MAX_DESCRIPTION_BYTES:
            raise forms.ValidationError(f"at most {MAX_DESCRIPTION_BYTES} bytes of UTF-8")
        return value


@admin.register(SuppressionEntry)
class SuppressionEntryAdmin(admin.ModelAdmin):
    form = SuppressionEntryForm
    list_display = ["recipient", "type", "source", "description", "updated"]
    list_filter = ["type", "source"]
    search_fields = ["recipient", "description"]
    readonly_fields = ["created", "updated"]
    date_hierarchy = "updated"
    show_full_result_count = False  # a count(*) of a large list on every page costs more than it tells

    def get_readonly_fields(
        self, request: HttpRequest, obj: SuppressionEntry | None = None
    ) -> list[str] | tuple[str, ...]:
        # The address and type are the entry's identity: remove it and add another instead.
        return [*self.readonly_fields, "recipient", "type"] if obj is not None else self.readonly_fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SuppressionEntry], search_term: str
    ) -> tuple[QuerySet[SuppressionEntry], bool]:
        # Stored addresses are canonical: an address search matches however it was typed.
        return super().get_search_results(
            request, queryset, mailbox_key(search_term) if "@" in search_term else search_term
        )
