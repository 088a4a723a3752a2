"""The tracking consent register in the admin (issue 14 Deliver 5, SPEC A.5): search by
address, filter by consent and source, an address's history (every record, newest first),
and add a record (a change of consent is a new record; a recorded one is never edited)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from consent.models import TrackingConsent
from mailcore.addresses import address_problem, mailbox_key


class TrackingConsentForm(forms.ModelForm):
    class Meta:
        model = TrackingConsent
        fields = ["recipient", "consent", "source", "evidence"]
        widgets = {"evidence": forms.Textarea(attrs={"rows": 3})}

    def clean_recipient(self) -> str:
        raw = self.cleaned_data["recipient"]
        problem = address_problem(raw.strip())
        if problem is not None:
            raise forms.ValidationError(f"not a valid email address: {problem}")
        return mailbox_key(raw)


@admin.register(TrackingConsent)
class TrackingConsentAdmin(admin.ModelAdmin):
    form = TrackingConsentForm
    list_display = ["recipient", "consent", "source", "recorded_at"]
    list_filter = ["consent", "source"]
    search_fields = ["recipient", "source", "evidence"]
    date_hierarchy = "recorded_at"
    show_full_result_count = False

    def get_readonly_fields(
        self, request: HttpRequest, obj: TrackingConsent | None = None
    ) -> list[str] | tuple[str, ...]:
        # History is kept: a recorded change is never edited; add a new record instead.
        return ["recipient", "consent", "source", "evidence", "recorded_at"] if obj is not None else []

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TrackingConsent], search_term: str
    ) -> tuple[QuerySet[TrackingConsent], bool]:
        # Stored addresses are canonical: an address search matches however it was typed.
        return super().get_search_results(
            request, queryset, mailbox_key(search_term) if "@" in search_term else search_term
        )
