"""Reads of stored templates. ``template_get_for_send`` is the contract with transmissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.dispatch import Signal

from engage import errors
from templates_app.models import Template

#: Sent before a template is deleted: "does a row of yours still need template ``template_id``?".
#: A receiver is ``(sender, *, template_id: str, **kwargs) -> bool``; ``transmissions`` connects
#: ``transmissions.selectors.transmission_uses_template`` in ``TransmissionsConfig.ready``.
template_needed = Signal()


def _not_found(template_id: str) -> errors.NotFound:
    return errors.NotFound("Template does not exist")


def template_get(*, template_id: str) -> Template:
    """The template row; 404 / 1600 "Template does not exist"."""
    template = Template.objects.filter(pk=template_id).first()
    if template is None:
        raise _not_found(template_id)
    return template


def template_in_use(*, template_id: str) -> bool:
    """True when an app above templates still needs the template: a transmission submitted
    (scheduled) or generating with it. The delete refuses it then (409 / 1602, SPEC B §2.2).

    A question sent as a Django signal (``template_needed``) rather than an import: transmissions
    reads templates, so it sits above templates_app in pyproject.toml's layers contract and
    templates_app may not import it back. The app that owns the answer connects a receiver when
    Django loads it. Receivers only read, and their errors propagate (``send``, not
    ``send_robust``): a failed query is a 500, never the delete of a template in use. No
    receiver connected fails closed too (``ImproperlyConfigured``, a 500 / 1500 at the API):
    with no one to ask, "nobody uses it" is not an answer.
    """
    if not template_needed.has_listeners(sender=Template):
        raise ImproperlyConfigured(
            "no receiver answers templates_app.selectors.template_needed (transmissions connects one in "
            "TransmissionsConfig.ready): cannot tell whether the template is in use"
        )
    return any(answer for _receiver, answer in template_needed.send(sender=Template, template_id=template_id))


def template_list(*, draft: bool | None = None) -> QuerySet[Template]:
    """Every template, one query. ``draft=True``: those with a draft; ``False``: those with a published version."""
    queryset = Template.objects.order_by("id")
    if draft is True:
        queryset = queryset.filter(draft_content__isnull=False)
    elif draft is False:
        queryset = queryset.filter(published_content__isnull=False)
    return queryset


def template_version(template: Template, *, draft: bool | None) -> tuple[bool, dict, dict, int, Any]:
    """``(is_published, content, options, version, updated_at)`` of the version a read asks for.

    ``draft=True`` → the draft (422 / 2004 if none); ``False`` → the published version
    (422 / 2005 if none); ``None`` → the most recently updated version.
    """
    if draft is None:
        if template.has_draft and (
            # each version's updated_at is written with its content (templates_app.services)
            not template.has_published
            or cast(datetime, template.draft_updated_at) >= cast(datetime, template.published_updated_at)
        ):
            draft = True
        else:
            draft = False
    if draft:
        if not template.has_draft:
            raise errors.NoDraftTemplate(f"Template '{template.id}' has no draft version")
        assert template.draft_content is not None and template.draft_version is not None  # written together
        return (
            False,
            template.draft_content,
            template.draft_options or {},
            template.draft_version,
            template.draft_updated_at,
        )
    if not template.has_published:
        raise errors.NoPublishedTemplate(f"Template '{template.id}' has no published version")
    assert template.published_content is not None and template.published_version is not None  # written together
    return (
        True,
        template.published_content,
        template.published_options or {},
        template.published_version,
        template.published_updated_at,
    )


def template_get_for_send(*, template_id: str, use_draft: bool) -> tuple[dict, dict, int]:
    """``(content, options, version)`` of the version a transmission sends.

    ``use_draft=False`` (SparkPost's default) takes the published version. Raises NotFound
    (404 / 1600), NoDraftTemplate (422 / 2004) or NoPublishedTemplate (422 / 2005).
    """
    template = template_get(template_id=template_id)
    _published, content, options, version, _updated = template_version(template, draft=use_draft)
    return content, options, version


def template_ids_like(*, base: str) -> set[str]:
    """Ids equal to ``base`` or starting with ``base-``: what a generated id must avoid."""
    return set(Template.objects.filter(Q(pk=base) | Q(pk__startswith=f"{base}-")).values_list("pk", flat=True))
