"""Admin for API keys: list, create (the raw key shown once, issue 15 Deliver 5), revoke.

Only the key's hash is stored (``api_keys.services.api_key_create``). The add page's answer
to its POST is the one place the raw key appears: it is rendered into that response (marked
``no-store``), never put in the session, a message or a redirect URL.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from api_keys.grants import ALL_GRANTS
from api_keys.models import ApiKey
from api_keys.services import api_key_create, api_key_revoke


class ApiKeyCreateForm(forms.Form):
    """What a new key needs: a label and at least one grant."""

    label = forms.CharField(max_length=1024, widget=forms.TextInput(attrs={"size": 60}))
    grants = forms.MultipleChoiceField(
        choices=[(grant, grant) for grant in ALL_GRANTS], widget=forms.CheckboxSelectMultiple
    )


class ApiKeyChangeForm(forms.ModelForm):
    """A key's label and grants, the grants ticked among :data:`~api_keys.grants.ALL_GRANTS`
    (a name not in it cannot be stored: it would grant nothing and look as if it did)."""

    grants = forms.MultipleChoiceField(
        choices=[(grant, grant) for grant in ALL_GRANTS],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do (SPEC A.1). At least one.",
    )

    class Meta:
        model = ApiKey
        fields = ["label", "grants"]

    def clean_grants(self) -> list[str]:
        return sorted(set(self.cleaned_data["grants"]))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyChangeForm
    list_display = ["label", "prefix", "grant_list", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["label", "prefix"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    fields = ["label", "prefix", "grants", "created_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="grants")
    def grant_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.grants)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """GET: the label and grants form. A valid POST creates the key and answers a page
        showing the raw key once, with a warning that it cannot be shown again."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)  # Django's 403
        form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Add API key"}
        if request.method == "POST" and form.is_valid():
            key, raw = api_key_create(label=form.cleaned_data["label"], grants=sorted(form.cleaned_data["grants"]))
            self.log_addition(request, key, [{"added": {}}])
            response = TemplateResponse(
                request, "admin/api_keys/apikey/created.html", {**context, "key": key, "raw_key": raw}
            )
            response["Cache-Control"] = "no-store"
            return response
        return TemplateResponse(request, "admin/api_keys/apikey/add.html", {**context, "form": form})
