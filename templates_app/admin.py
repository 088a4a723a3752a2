"""Admin for stored templates: search, filters, edit the draft, publish, preview.

Edits go through ``templates_app.services`` like the API does, so the admin cannot store a
template that the API would refuse (content rules and the substitution language's syntax).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from engage import errors
from templates_app import content as content_rules
from templates_app.models import Template
from templates_app.rendering import content_compile, content_render_preview
from templates_app.selectors import template_version
from templates_app.services import TemplateUpdateMode, template_update


class VersionFilter(admin.SimpleListFilter):
    field: str

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Template]) -> QuerySet[Template]:
        if self.value() in {"yes", "no"}:
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class PublishedFilter(VersionFilter):
    title, parameter_name, field = "published", "published", "published_content"


class HasDraftFilter(VersionFilter):
    title, parameter_name, field = "has draft", "has_draft", "draft_content"


class TemplateDraftForm(forms.ModelForm):
    """Name, description and the draft's content (started from the published version when there is no draft)."""

    from_email = forms.CharField(label="From email")
    from_name = forms.CharField(label="From name", required=False)
    subject = forms.CharField()
    reply_to = forms.CharField(required=False)
    html = forms.CharField(widget=forms.Textarea(attrs={"rows": 14, "cols": 100}), required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "cols": 100}), required=False)
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 100}),
        required=False,
        help_text='A JSON object, e.g. {"X-Tag": "x"}',
    )

    class Meta:
        model = Template
        fields = ["name", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template = self.instance
        content = template.draft_content or template.published_content or {}
        sender = content.get("from") or {}
        self.initial.update(
            {
                "from_email": sender.get("email", ""),
                "from_name": sender.get("name", ""),
                "subject": content.get("subject", ""),
                "reply_to": content.get("reply_to", ""),
                "html": content.get("html", ""),
                "text": content.get("text", ""),
                "headers": json.dumps(content["headers"]) if content.get("headers") else "",
            }
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data; the stubs allow None for overrides
        raw: dict = {"from": {"email": cleaned.get("from_email"), "name": cleaned.get("from_name") or None}}
        for key in ("subject", "reply_to", "html", "text"):
            if cleaned.get(key):
                raw[key] = cleaned[key]
        if cleaned.get("headers"):
            try:
                raw["headers"] = json.loads(cleaned["headers"])
            except ValueError as exc:
                raise forms.ValidationError({"headers": f"Not valid JSON: {exc}"}) from None
        try:
            content = content_rules.normalize_content(raw, max_bytes=settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES)
            content_compile(content)
        except errors.EngageError as exc:
            raise forms.ValidationError(exc.description) from None
        cleaned["content"] = content
        return cleaned


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateDraftForm
    list_display = ["id", "name", "has_published_flag", "has_draft_flag", "updated", "last_use", "preview_link"]
    list_filter = [PublishedFilter, HasDraftFilter]
    search_fields = ["id", "name"]
    readonly_fields = ["id", "versions", "preview_link"]
    fieldsets = [
        (None, {"fields": ["id", "name", "description", "versions", "preview_link"]}),
        ("Draft content", {"fields": ["from_email", "from_name", "subject", "reply_to", "html", "text", "headers"]}),
    ]
    actions = ["publish"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # templates are created through the API; the admin edits drafts

    def has_delete_permission(self, request: HttpRequest, obj: Template | None = None) -> bool:
        return False  # deletes go through the API, which refuses templates in use

    @admin.display(boolean=True, description="published")
    def has_published_flag(self, obj: Template) -> bool:
        return obj.has_published

    @admin.display(boolean=True, description="has draft")
    def has_draft_flag(self, obj: Template) -> bool:
        return obj.has_draft

    @admin.display(description="last update")
    def updated(self, obj: Template) -> datetime:
        return obj.last_update_time

    @admin.display(description="versions")
    def versions(self, obj: Template) -> str:
        parts = []
        if obj.has_published:
            parts.append(f"published v{obj.published_version}")
        if obj.has_draft:
            parts.append(f"draft v{obj.draft_version}")
        return ", ".join(parts)

    @admin.display(description="preview")
    def preview_link(self, obj: Template) -> str:
        return format_html('<a href="{}">Preview</a>', reverse("admin:templates_app_template_preview", args=[obj.pk]))

    def save_model(self, request: HttpRequest, obj: Template, form: TemplateDraftForm, change: bool) -> None:
        template_update(
            template_id=obj.pk,
            name=form.cleaned_data["name"],
            description=form.cleaned_data.get("description") or "",
            content=form.cleaned_data["content"],
        )

    @admin.action(description="Publish the draft of selected templates")
    def publish(self, request: HttpRequest, queryset: QuerySet[Template]) -> None:
        published, skipped = [], []
        for template in queryset:
            try:
                template_update(template_id=template.pk, mode=TemplateUpdateMode.PUBLISH)
                published.append(template.pk)
            except errors.NoDraftTemplate:
                skipped.append(template.pk)
        if published:
            messages.success(request, f"Published: {', '.join(published)}.")
        if skipped:
            messages.warning(request, f"No draft to publish: {', '.join(skipped)}.")

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("<path:object_id>/preview/", preview, name="templates_app_template_preview")] + super().get_urls()

    def preview_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """Render the draft (or published) version with sample substitution data."""
        template = get_object_or_404(Template, pk=object_id)
        version = request.POST.get("version") or ("draft" if template.has_draft else "published")
        sample = request.POST.get("substitution_data", "{}")
        rendered, error = None, None
        if request.method == "POST":
            try:
                data = json.loads(sample or "{}")
                if not isinstance(data, dict):
                    raise ValueError("substitution data must be a JSON object")
                _published, content, _options, _number, _updated = template_version(template, draft=version == "draft")
                rendered = content_render_preview(content, substitution_data=data)
            except ValueError as exc:
                error = f"Invalid JSON: {exc}"
            except errors.EngageError as exc:
                error = exc.description
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": f"Preview {template.pk}",
            "version": version,
            "substitution_data": sample,
            "rendered": rendered,
            "error": error,
        }
        return TemplateResponse(request, "admin/templates_app/template/preview.html", context)
