"""``/api/v1/templates`` (SPEC B §2.2): parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from engage import errors
from engage.api.fields import bool_field, iso, text_field
from engage.api.schema import operation, parse_body, parse_query
from engage.api.views import ApiView, no_content, request_object, results
from mailcore.ids import MAX_ID_BYTES
from mailcore.link_check import MAX_LINKS_LISTED
from templates_app import content as content_rules
from templates_app import schemas
from templates_app.models import Template
from templates_app.rendering import content_link_check, content_render_preview
from templates_app.selectors import template_get, template_list, template_version
from templates_app.services import TemplateUpdateMode, template_create, template_delete, template_update

VIEW = ("templates/view", "templates/modify")
MODIFY = ("templates/modify",)
PREVIEW = ("templates/preview", "templates/modify")


def parse_content(body: dict, *, required: bool) -> dict[str, Any] | None:
    raw = body.get("content")
    if raw is None or content_rules.is_empty_object(raw):
        if required:
            raise errors.RequiredFieldMissing("content is a required field")
        return None
    return content_rules.normalize_content(raw, max_bytes=settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES)


def parse_options(body: dict) -> dict[str, bool] | None:
    raw = body.get("options")
    if raw is None:
        return None
    options = content_rules.normalize_options(raw)
    return options or None


def template_summary(template: Template) -> dict[str, Any]:
    summary = {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "published": template.has_published,
        "has_draft": template.has_draft,
        "has_published": template.has_published,
        "last_update_time": iso(template.last_update_time),
    }
    if template.last_use is not None:
        summary["last_use"] = iso(template.last_use)
    return summary


def template_detail(template: Template, *, draft: bool | None) -> dict[str, Any]:
    published, content, options, _version, updated_at = template_version(template, draft=draft)
    detail = template_summary(template)
    detail.update(
        {
            "published": published,
            "last_update_time": iso(updated_at),
            "options": options,
            "content": content,
        }
    )
    return detail


class TemplateListView(ApiView):
    grants = {"GET": VIEW, "POST": MODIFY}

    @operation(operation_id="templates_list", summary="List templates", query=schemas.DraftQuery, tags=["templates"])
    def get(self, request: Request) -> Response:
        query = parse_query(request, schemas.DraftQuery)
        return results([template_summary(template) for template in template_list(draft=query.draft)])

    @operation(
        operation_id="templates_create", summary="Create a template", body=schemas.TemplateCreate, tags=["templates"]
    )
    def post(self, request: Request) -> Response:
        parse_body(request, schemas.TemplateCreate)
        body = request_object(request)
        template_id = content_rules.parse_template_id(text_field(body, "id", max_bytes=MAX_ID_BYTES))
        name = text_field(body, "name", max_bytes=1024)
        if template_id is None and not name:
            raise errors.RequiredFieldMissing("id or name is required")
        description = text_field(body, "description", max_bytes=1024) or ""
        published = bool_field(body, "published") or False
        content = parse_content(body, required=True)
        assert content is not None  # required=True
        options = parse_options(body) or {}
        template = template_create(
            template_id=template_id,
            name=name,
            description=description,
            published=published,
            content=content,
            options=options,
        )
        return results({"id": template.id})


class TemplateDetailView(ApiView):
    grants = {"GET": VIEW, "PUT": MODIFY, "DELETE": MODIFY}

    @operation(
        operation_id="templates_retrieve", summary="Retrieve a template", query=schemas.DraftQuery, tags=["templates"]
    )
    def get(self, request: Request, template_id: str) -> Response:
        query = parse_query(request, schemas.DraftQuery)
        return results(template_detail(template_get(template_id=template_id), draft=query.draft))

    @operation(
        operation_id="templates_update",
        summary="Update a template",
        body=schemas.TemplateUpdate,
        query=schemas.UpdateQuery,
        tags=["templates"],
    )
    def put(self, request: Request, template_id: str) -> Response:
        parse_body(request, schemas.TemplateUpdate)
        body = request_object(request)
        update_published = bool(parse_query(request, schemas.UpdateQuery).update_published)
        body_id = body.get("id")
        if body_id is not None and body_id != template_id:
            raise errors.InvalidData("id is read-only and cannot be changed")
        template_update(
            template_id=template_id,
            name=text_field(body, "name", max_bytes=1024),
            description=text_field(body, "description", max_bytes=1024),
            content=parse_content(body, required=False),
            options=parse_options(body),
            mode=TemplateUpdateMode.for_request(
                published=bool_field(body, "published") is True, update_published=update_published
            ),
        )
        return results({})

    @operation(operation_id="templates_delete", summary="Delete a template", status=204, tags=["templates"])
    def delete(self, request: Request, template_id: str) -> Response:
        template_delete(template_id=template_id)
        return no_content()


class TemplatePreviewView(ApiView):
    grants = {"POST": PREVIEW}

    @operation(
        operation_id="templates_preview",
        summary="Preview a template",
        body=schemas.TemplatePreview,
        query=schemas.PreviewQuery,
        tags=["templates"],
    )
    def post(self, request: Request, template_id: str) -> Response:
        body = parse_body(request, schemas.TemplatePreview)
        draft = parse_query(request, schemas.PreviewQuery).draft
        template = template_get(template_id=template_id)
        _published, content, _options, _version, _updated = template_version(template, draft=draft)
        return results(content_render_preview(content, substitution_data=body.substitution_data or {}))


class LinkCheckView(ApiView):
    """``POST /api/v1/link-check``: Engage's own (SparkPost has none), the link check the
    template editor in the admin shows (``templates_app.rendering.content_link_check``)."""

    grants = {"POST": VIEW}

    @operation(
        operation_id="link_check",
        summary="Check which links of content or a template will be tracked",
        description=(
            "Every link of the html, text and amp_html parts of `content` or of a stored template "
            "(`template_id`; `draft: true` for its draft), rendered with `substitution_data`: whether "
            "it will be click-tracked, why not (`reason`), its link name and its exact target after "
            "substitution. Engage's own operation; SparkPost has no equivalent. Inline `content` "
            "is capped at ENGAGE_MAX_TEMPLATE_CONTENT_BYTES as a template's is (422 / 1300 with "
            f"`limit`); the answer lists the first {MAX_LINKS_LISTED} links (`links`), `total_links` says how "
            "many there are and `truncated` whether some were left off."
        ),
        body=schemas.LinkCheck,
        response=schemas.LinkCheckAnswer,
        tags=["templates"],
    )
    def post(self, request: Request) -> Response:
        body = parse_body(request, schemas.LinkCheck)
        if body.content is not None and body.template_id is not None:
            raise errors.InvalidFieldCombination("content and template_id cannot both be given")
        template_options = None
        if body.template_id is not None:
            template = template_get(template_id=body.template_id)
            _published, content, template_options, _version, _updated = template_version(template, draft=body.draft)
        elif body.content is not None:
            content = body.content.model_dump(exclude_none=True)
            content_rules.check_content_size(content, max_bytes=settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES)
        else:
            raise errors.RequiredFieldMissing("content or template_id is required")
        options = body.options.model_dump(exclude_none=True) if body.options is not None else None
        check = content_link_check(
            content,
            substitution_data=body.substitution_data or {},
            options=options,
            template_options=template_options,
        )
        return results(check)
