"""Writes to stored templates (SPEC B §2.2). Every write compiles the content first, so a
template that is stored always compiles."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from engage import errors
from mailcore.ids import first_free_id, slug_from_name
from templates_app.models import Template
from templates_app.rendering import content_compile
from templates_app.selectors import template_get, template_ids_like, template_in_use

_GENERATION_ATTEMPTS = 5


def template_create(
    *,
    template_id: str | None,
    name: str | None,
    description: str = "",
    published: bool = False,
    content: dict[str, Any],
    options: dict[str, bool],
) -> Template:
    """Store a new template as a draft, or as published when ``published``.

    A given id that exists is 409 / 1602. Without an id one is generated from the name
    (slug, then ``-2``, ``-3``… on collision); without a name the name is the id.
    """
    content_compile(content)
    now = timezone.now()
    fields: dict[str, Any] = {"description": description, "last_version": 1}
    prefix = "published" if published else "draft"
    fields.update(
        {
            f"{prefix}_content": content,
            f"{prefix}_options": options,
            f"{prefix}_version": 1,
            f"{prefix}_updated_at": now,
        }
    )
    if template_id is not None:
        try:
            with transaction.atomic():
                return Template.objects.create(id=template_id, name=name or template_id, **fields)
        except IntegrityError:
            raise errors.Conflict(f"Template '{template_id}' already exists") from None

    assert name is not None, "the view requires an id or a name"
    base = slug_from_name(name, fallback="template")
    for _attempt in range(_GENERATION_ATTEMPTS):
        candidate = first_free_id(base, taken=lambda b: template_ids_like(base=b))
        try:
            with transaction.atomic():
                return Template.objects.create(id=candidate, name=name, **fields)
        except IntegrityError:
            continue  # a concurrent create took it: look again
    raise errors.Conflict(f"Could not generate a free template id from name '{name}'")


def _write_version(
    template: Template,
    *,
    slot: str,
    content: dict | None,
    options: dict | None,
    now: datetime,
    replace_options: bool = False,
) -> list[str]:
    """Write content/options into the ``draft`` or ``published`` slot; the slot's base is itself,
    or the published version when a draft is started. ``options`` keys replace the base's, or
    the whole of them with ``replace_options``."""
    base_content = getattr(template, f"{slot}_content")
    base_options = getattr(template, f"{slot}_options")
    if base_content is None:
        base_content, base_options = template.published_content, template.published_options
    template.last_version += 1
    setattr(template, f"{slot}_content", content if content is not None else base_content)
    merged_options = {} if replace_options and options is not None else dict(base_options or {})
    merged_options.update(options or {})
    setattr(template, f"{slot}_options", merged_options)
    setattr(template, f"{slot}_version", template.last_version)
    setattr(template, f"{slot}_updated_at", now)
    return ["last_version", f"{slot}_content", f"{slot}_options", f"{slot}_version", f"{slot}_updated_at"]


class TemplateUpdateMode(enum.Enum):
    """Which version a template update writes (SPEC B §2.2, PUT)."""

    #: Create or update the draft, starting from the published version (the default).
    DRAFT = "draft"
    #: Overwrite the published version (``?update_published=true``); 422 / 2005 without one.
    PUBLISHED = "published"
    #: Apply the changes to the draft, then publish it (``"published": true``); 422 / 2004
    #: without a draft.
    PUBLISH = "publish"

    @classmethod
    def for_request(cls, *, published: bool, update_published: bool) -> TemplateUpdateMode:
        """The mode of a PUT. Order of precedence: ``"published": true`` in the body
        (PUBLISH) over ``?update_published=true`` (PUBLISHED) over the default (DRAFT)."""
        if published:
            return cls.PUBLISH
        return cls.PUBLISHED if update_published else cls.DRAFT


def template_update(
    *,
    template_id: str,
    name: str | None = None,
    description: str | None = None,
    content: dict[str, Any] | None = None,
    options: dict[str, bool] | None = None,
    mode: TemplateUpdateMode = TemplateUpdateMode.DRAFT,
    replace_options: bool = False,
) -> Template:
    """Update a template (SPEC B §2.2, PUT): the version ``mode`` says (see
    :class:`TemplateUpdateMode`). ``content`` replaces the whole content; given ``options``
    keys replace those keys (the API's PUT), or, with ``replace_options`` (DRAFT only), given
    ``options`` are the draft's whole options (the admin's form, where an option can also be
    left unset); ``name`` and ``description`` change only when given.

    Raises NotFound (404 / 1600), TemplateSyntaxError (422 / 3000), NoDraftTemplate
    (422 / 2004) or NoPublishedTemplate (422 / 2005); nothing is written then.
    """
    if content is not None:
        content_compile(content)
    with transaction.atomic():
        template = Template.objects.select_for_update().filter(pk=template_id).first()
        if template is None:
            template_get(template_id=template_id)  # raises the 404
        assert template is not None
        assert not replace_options or mode is TemplateUpdateMode.DRAFT, "replace_options writes a draft"
        now = timezone.now()
        update_fields = _labels_write(template, name=name, description=description)
        if mode is TemplateUpdateMode.PUBLISH:
            update_fields += _draft_publish(template, content=content, options=options, now=now)
        elif mode is TemplateUpdateMode.PUBLISHED:
            update_fields += _published_write(template, content=content, options=options, now=now)
        else:
            update_fields += _draft_write(
                template, content=content, options=options, now=now, replace_options=replace_options
            )
        if update_fields:
            template.save(update_fields=sorted(set(update_fields)))
    return template


def _labels_write(template: Template, *, name: str | None, description: str | None) -> list[str]:
    """Set the name and the description that are given; the fields changed."""
    update_fields: list[str] = []
    if name is not None:
        template.name = name
        update_fields.append("name")
    if description is not None:
        template.description = description
        update_fields.append("description")
    return update_fields


def _draft_write(
    template: Template, *, content: dict | None, options: dict | None, now: datetime, replace_options: bool = False
) -> list[str]:
    """DRAFT: a new draft version from the given changes, if any; the fields changed."""
    if content is None and options is None:
        return []
    return _write_version(
        template, slot="draft", content=content, options=options, now=now, replace_options=replace_options
    )


def _published_write(template: Template, *, content: dict | None, options: dict | None, now: datetime) -> list[str]:
    """PUBLISHED: a new published version from the given changes, if any; the fields changed."""
    if not template.has_published:
        raise errors.NoPublishedTemplate(f"Template '{template.pk}' has no published version to update")
    if content is None and options is None:
        return []
    return _write_version(template, slot="published", content=content, options=options, now=now)


def _draft_publish(template: Template, *, content: dict | None, options: dict | None, now: datetime) -> list[str]:
    """PUBLISH: the changes written to the draft, then the draft becomes the published
    version and the template has no draft; the fields changed."""
    update_fields = _draft_write(template, content=content, options=options, now=now)
    if not template.has_draft:
        raise errors.NoDraftTemplate(f"Template '{template.pk}' has no draft version to publish")
    template.published_content = template.draft_content
    template.published_options = template.draft_options
    template.published_version = template.draft_version
    template.published_updated_at = now
    template.draft_content = template.draft_options = template.draft_version = None
    template.draft_updated_at = None
    return update_fields + [
        "published_content",
        "published_options",
        "published_version",
        "published_updated_at",
        "draft_content",
        "draft_options",
        "draft_version",
        "draft_updated_at",
    ]


def template_delete(*, template_id: str) -> None:
    """Delete every version; 404 / 1600 if absent, 409 / 1602 while a transmission uses it."""
    with transaction.atomic():
        template = Template.objects.select_for_update().filter(pk=template_id).first()
        if template is None:
            template_get(template_id=template_id)  # raises the 404
        assert template is not None
        if template_in_use(template_id=template_id):
            raise errors.ResourceInUse(f"Template '{template_id}' is in use by msg generation")
        template.delete()


def template_touch_last_use(*, template_id: str) -> None:
    """Record that a transmission used the template now (``last_use`` in the API)."""
    Template.objects.filter(pk=template_id).update(last_use=timezone.now())
