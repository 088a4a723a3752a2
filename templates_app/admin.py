"""Admin for stored templates: search, filters, create, edit the draft beside a live preview
and a link check, publish from the edit page, preview (issue 15, Deliver 5).

Creates and edits go through ``templates_app.services`` like the API does, so the admin cannot
store a template that the API would refuse (content rules and the substitution language's
syntax). The editor's live preview and link check post the unsaved form to
``editor-render/``, which runs the code of ``POST /api/v1/templates/{id}/preview`` and
``POST /api/v1/link-check`` (``templates_app.rendering``) and answers JSON. Sample data comes
from typed JSON or from a recipient list entry (``recipient_lists.admin``'s ``sample/`` page,
fetched by the browser: templates may not import recipient lists); the test send is the
console's (``console.views.template_test_send``), which sits above transmissions.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from engage import errors
from engage.api.parsers import loads
from mailcore.links import RAW_URL
from templates_app import content as content_rules
from templates_app.models import Template
from templates_app.rendering import (
    content_compile,
    content_link_check,
    content_render_preview,
    sample_data,
    sample_recipient,
)
from templates_app.selectors import template_version
from templates_app.services import TemplateUpdateMode, template_create, template_update

#: The form field that shows a compile error of each content part (``Header:<Name>`` of a
#: custom header: ``headers``).
PART_FIELDS = {
    "html": "html",
    "text": "text",
    "amp_html": "amp_html",
    "Header:Subject": "subject",
    "Header:From": "from_email",
    "Header:Reply-To": "reply_to",
}


def part_field(part: str) -> str:
    """The editor field of a content part named as the language names it."""
    return PART_FIELDS.get(part, "headers" if part.startswith("Header:") else "html")


def error_at_line(exc: errors.EngageError) -> str:
    """``"html, line 12: syntax error near 'age'"`` for a compile error (422 / 3000, whose
    ``extra`` has ``part`` and ``line``), else the error's description."""
    part, line = exc.extra.get("part"), exc.extra.get("line")
    if part is None or line is None:
        return exc.description
    return f"{part}, line {line}: {exc.description.split(f'line {line}: ', 1)[-1]}"


#: The editor field an error of ``normalize_content`` is about, by the start of its
#: description (the longest first); an ``InvalidHeader`` not named here is about ``headers``.
_CONTENT_FIELDS = (
    ("content.from.name", "from_name"),
    ("content.from", "from_email"),
    ("content.reply_to", "reply_to"),
    ("content.subject", "subject"),
    ("content.html", "html"),
    ("content.text", "text"),
    ("content.amp_html", "amp_html"),
    ("content.headers", "headers"),
)


def content_error_field(exc: errors.EngageError) -> str | None:
    """The editor field a content error is about (None: the form as a whole)."""
    for prefix, field in _CONTENT_FIELDS:
        if exc.description.startswith(prefix):
            return field
    return "headers" if isinstance(exc, errors.InvalidHeader) else None


def content_from_fields(fields: Any) -> dict[str, Any]:
    """The content the editor's fields describe, checked as the API checks content: raises
    ``forms.ValidationError`` keyed by field (a compile error on the field of its part, as
    ``"html, line 12: ..."``; a content rule's on the field it names). ``fields`` is a
    mapping of the form's field names to text; ``headers`` is JSON text parsed as the API
    parses a body (``engage.api.parsers.loads``: a NUL, a lone surrogate, NaN or nesting too
    deep is an error at the field, not a 500)."""
    email = (fields.get("from_email") or "").strip()
    raw: dict[str, Any] = {"from": {"email": email or None, "name": (fields.get("from_name") or "").strip() or None}}
    for key in ("subject", "reply_to", "html", "text", "amp_html"):
        if fields.get(key):
            raw[key] = fields[key]
    if fields.get("headers"):
        try:
            raw["headers"] = loads(fields["headers"])
        except errors.InvalidJson as exc:
            said = exc.description.removeprefix("Problems parsing request as json: ").removeprefix("body: ")
            unstorable = " contains a " in said  # valid JSON, but a NUL or a lone surrogate
            raise forms.ValidationError({"headers": said if unstorable else f"Not valid JSON: {said}"}) from None
    try:
        content = content_rules.normalize_content(raw, max_bytes=settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES)
        content_compile(content)
    except errors.TemplateSyntaxError as exc:
        raise forms.ValidationError({part_field(str(exc.extra.get("part", ""))): error_at_line(exc)}) from None
    except errors.EngageError as exc:
        field = content_error_field(exc)
        raise forms.ValidationError({field: exc.description} if field else exc.description) from None
    return content


def missing_hints(missing: list[str], *, address: dict[str, str]) -> list[str]:
    """Sentences for the likely slips among the ``missing`` names: ``name`` read while the
    sample's recipient has a display name (a list's ``name`` column is the recipient's name,
    ``{{address.name}}``, not substitution data)."""
    if "name" in missing and address.get("name"):
        return [f"use {{{{address.name}}}} for the recipient's name ({address['name']})"]
    return []


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


#: The editor's field of each template option (``content_rules.OPTION_KEYS``); not the bare
#: names: the live preview posts ``click_tracking`` as its own choice for the link check.
OPTION_FIELDS = {key: f"option_{key}" for key in content_rules.OPTION_KEYS}
_ON, _OFF = "on", "off"


def _option_field(key: str, label: str, server_default: bool, help_text: str) -> forms.ChoiceField:
    """A tri-state option: not set (the key is absent from the template's options, as an API
    client that leaves it out), on (true) or off (false)."""
    unset = f"not set: the transmission's, else the server's ({'on' if server_default else 'off'})"
    return forms.ChoiceField(
        label=label, choices=[("", unset), (_ON, "on"), (_OFF, "off")], required=False, help_text=help_text
    )


def options_from_fields(fields: Any) -> dict[str, bool]:
    """The template options the editor's option fields describe, as the API stores a body's
    ``options`` (``content_rules.normalize_options``): the keys set, as booleans."""
    raw = {key: fields.get(name) == _ON for key, name in OPTION_FIELDS.items() if fields.get(name) in (_ON, _OFF)}
    return content_rules.normalize_options(raw)


def _wide_text(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "class": "tpl-source", "spellcheck": "false"})


class TemplateDraftForm(forms.ModelForm):
    """Name, description and the draft's content and options (started from the published
    version when there is no draft); on the add page also the id (made from the name when left
    empty)."""

    template_id = forms.CharField(
        label="Id", required=False, max_length=64, help_text="Left empty: made from the name (as the API does)."
    )
    from_email = forms.CharField(label="From email", widget=forms.TextInput(attrs={"class": "tpl-wide"}))
    from_name = forms.CharField(label="From name", required=False, widget=forms.TextInput(attrs={"class": "tpl-wide"}))
    subject = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "class": "tpl-wide tpl-source"}))
    reply_to = forms.CharField(required=False, widget=forms.TextInput(attrs={"class": "tpl-wide"}))
    html = forms.CharField(widget=_wide_text(16), required=False)
    text = forms.CharField(widget=_wide_text(8), required=False)
    amp_html = forms.CharField(label="AMP HTML", widget=_wide_text(4), required=False)
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "class": "tpl-wide tpl-source"}),
        required=False,
        help_text='A JSON object, e.g. {"X-Tag": "x"}',
    )
    option_open_tracking = _option_field(
        "open_tracking", "Open tracking", settings.ENGAGE_OPEN_TRACKING, "A pixel records opens."
    )
    option_click_tracking = _option_field(
        "click_tracking", "Click tracking", settings.ENGAGE_CLICK_TRACKING, "Links are rewritten to record clicks."
    )
    option_transactional = _option_field(
        "transactional",
        "Transactional",
        False,
        "Transactional mail has no unsubscribe link and ignores non-transactional opt-outs.",
    )

    class Meta:
        model = Template
        fields = ["name", "description"]
        widgets = {"name": forms.TextInput(attrs={"class": "tpl-wide"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template = self.instance
        content = template.draft_content or template.published_content or {}
        options = (template.draft_options if template.draft_content else template.published_options) or {}
        sender = content.get("from") or {}
        self.initial.update(
            {
                "from_email": sender.get("email", ""),
                "from_name": sender.get("name", ""),
                "subject": content.get("subject", ""),
                "reply_to": content.get("reply_to", ""),
                "html": content.get("html", ""),
                "text": content.get("text", ""),
                "amp_html": content.get("amp_html", ""),
                "headers": json.dumps(content["headers"]) if content.get("headers") else "",
            }
        )
        for key, name in OPTION_FIELDS.items():
            if isinstance(options.get(key), bool):
                self.initial[name] = _ON if options[key] else _OFF

    def clean_template_id(self) -> str | None:
        value = self.cleaned_data.get("template_id") or None
        try:
            value = content_rules.parse_template_id(value)
        except errors.EngageError as exc:
            raise forms.ValidationError(exc.description) from None
        if value is not None and Template.objects.filter(pk=value).exists():
            raise forms.ValidationError(f"Template '{value}' already exists")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data; the stubs allow None for overrides
        if self.errors:
            return cleaned
        cleaned["content"] = content_from_fields(cleaned)
        cleaned["options"] = options_from_fields(cleaned)
        return cleaned


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateDraftForm
    # One "versions" column ("published v1, draft v2"), not two flag columns: at 1280 px,
    # beside the sidebar and the filters, the Preview column was cut off ("Previe").
    list_display = ["id", "name", "versions", "updated", "last_use", "preview_link"]
    list_filter = [PublishedFilter, HasDraftFilter]
    search_fields = ["id", "name"]
    readonly_fields = ["id", "versions", "preview_link"]
    content_fields = ["from_email", "from_name", "subject", "reply_to", "html", "text", "amp_html", "headers"]
    option_fields = list(OPTION_FIELDS.values())
    actions = ["publish"]
    change_form_template = "admin/templates_app/template/editor.html"

    def get_fieldsets(self, request: HttpRequest, obj: Template | None = None) -> Any:
        head = (
            ["id", "name", "description", "versions", "preview_link"] if obj else ["template_id", "name", "description"]
        )
        options = {
            "fields": self.option_fields,
            "description": "The template's options, as the API's options: a transmission's own options win over "
            "them; not set, the server's defaults apply.",
        }
        return [
            (None, {"fields": head}),
            ("Draft content", {"fields": self.content_fields}),
            ("Draft options", options),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Template | None = None) -> Any:
        return self.readonly_fields if obj else []

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
        """Add: ``template_create`` (a draft); change: ``template_update`` of the draft; with
        the "Save and publish" button, the draft is then published. A conflict or a failed
        publish is shown on the page and nothing else is written."""
        cleaned = form.cleaned_data
        if change:
            template = template_update(
                template_id=obj.pk,
                name=cleaned["name"],
                description=cleaned.get("description") or "",
                content=cleaned["content"],
                options=cleaned["options"],
                replace_options=True,
            )
        else:
            template = template_create(
                template_id=cleaned.get("template_id"),
                name=cleaned["name"],
                description=cleaned.get("description") or "",
                content=cleaned["content"],
                options=cleaned["options"],
            )
        if "_publish" in request.POST:
            template = template_update(template_id=template.pk, mode=TemplateUpdateMode.PUBLISH)
            messages.success(request, f"Published {template.pk} (version {template.published_version}).")
        obj.__dict__.update(template.__dict__)
        obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: Template, post_url_continue: str | None = None) -> HttpResponse:
        if "_publish" in request.POST:
            return HttpResponseRedirect(reverse("admin:templates_app_template_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Template) -> HttpResponse:
        if "_publish" in request.POST:
            return HttpResponseRedirect(reverse("admin:templates_app_template_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "raw_url": RAW_URL}  # the link check's note explains it
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except errors.EngageError as exc:  # e.g. 409: the id is taken (the form is not shown again)
            messages.error(request, exc.description)
            return HttpResponseRedirect(request.get_full_path())

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
        render = self.admin_site.admin_view(require_POST(self.editor_render_view))
        return [
            path("editor-render/", render, name="templates_app_template_editor_render"),
            path("<path:object_id>/preview/", preview, name="templates_app_template_preview"),
        ] + super().get_urls()

    def editor_render_view(self, request: HttpRequest) -> JsonResponse:
        """The live preview and link check of the editor's unsaved fields (POSTed as the
        form is, plus ``substitution_data`` as JSON text and ``click_tracking``:
        ``""``/``"true"``/``"false"``). Answers ``{"rendered": {from, subject, html, text,
        ...} | null, "links": {"click_tracking", "links": [...]} | null, "errors": [{"field",
        "message"}], "missing": [name, ...], "hints": [sentence, ...]}``, always 200: the
        errors are what the page shows; ``missing`` names what the template reads that the
        sample data lacks (rendered empty: the page warns, beside the preview and the test
        send), ``address.name`` among them when the sample names no recipient. The sample's
        ``address`` (a recipient list entry's, ``sample_recipient``) is the recipient's, as
        in a real message; ``hints`` says how to fix a likely slip (``{{name}}`` missing while
        the entry has a name: ``{{address.name}}``). The link check's template options are the
        form's option fields when posted (unsaved, as the rest), else the stored template's."""
        if not self.has_view_or_change_permission(request):
            return JsonResponse({"errors": [{"field": None, "message": "permission denied"}]}, status=403)
        answer: dict[str, Any] = {"rendered": None, "links": None, "errors": [], "missing": [], "hints": []}
        try:
            data, address = sample_recipient(sample_data(request.POST.get("substitution_data", "")))
        except errors.EngageError as exc:
            answer["errors"].append({"field": "substitution_data", "message": f"Sample data: {exc.description}"})
            return JsonResponse(answer)
        if any("\x00" in value for value in request.POST.values()):
            answer["errors"].append({"field": None, "message": "NUL characters are not allowed"})
            return JsonResponse(answer)
        try:
            content = content_from_fields(request.POST)
        except forms.ValidationError as exc:
            for field, problems in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                for message in problems:
                    answer["errors"].append({"field": None if field == "__all__" else field, "message": message})
            return JsonResponse(answer)
        click = {"true": True, "false": False}.get(request.POST.get("click_tracking", ""))
        if any(name in request.POST for name in OPTION_FIELDS.values()):  # the form's, unsaved
            template_options: dict[str, Any] | None = options_from_fields(request.POST)
        else:
            stored = Template.objects.filter(pk=request.POST.get("_template") or None).first()
            template_options = (stored.draft_options or stored.published_options) if stored else None
        try:
            answer["rendered"] = content_render_preview(
                content, substitution_data=data, address=address, missing=answer["missing"]
            )
            answer["hints"] = missing_hints(answer["missing"], address=address)
            answer["links"] = content_link_check(
                content,
                substitution_data=data,
                address=address,
                options={"click_tracking": click} if click is not None else None,
                template_options=template_options,
            )
        except errors.EngageError as exc:
            field = part_field(str(exc.extra.get("part", ""))) if exc.extra.get("part") else None
            answer["errors"].append({"field": field, "message": error_at_line(exc)})
        return JsonResponse(answer)

    def preview_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """Render the draft (or published) version with sample substitution data."""
        template = get_object_or_404(Template, pk=object_id)
        version = request.POST.get("version") or ("draft" if template.has_draft else "published")
        sample = request.POST.get("substitution_data", "{}")
        rendered, error = None, None
        missing: list[str] = []
        if request.method == "POST":
            try:
                data, address = sample_recipient(sample_data(sample))
                _published, content, _options, _number, _updated = template_version(template, draft=version == "draft")
                rendered = content_render_preview(content, substitution_data=data, address=address, missing=missing)
            except errors.InvalidJson as exc:
                error = f"Invalid JSON: {exc.description}"
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
            "missing": missing,
        }
        return TemplateResponse(request, "admin/templates_app/template/preview.html", context)
