"""Reads about transmissions: the API's list and detail, and the in-use checks other apps need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from engage import errors
from engage.api.fields import iso
from mailcore.ids import smtp_template_id, smtp_template_transmission
from transmissions.models import (
    GENERATED_STATES,
    Message,
    MessageState,
    Transmission,
    TransmissionSource,
    TransmissionState,
)

_ACTIVE = (TransmissionState.SUBMITTED, TransmissionState.GENERATING)


def template_id_of(transmission: Transmission) -> str:
    """The ``template_id`` a transmission's events and tracking tokens carry, which the
    console shows and filters by: ``smtp_<id>`` for an SMTP injection (SMTP-INJECTION.md §1.7,
    ``mailcore.ids.smtp_template_id``), the stored template's id, or ``"inline"`` for inline
    content (SPEC B §6.2). Reads ``source``, ``id`` and ``template_id``."""
    if transmission.source == TransmissionSource.SMTP:
        return smtp_template_id(transmission.id)
    return transmission.template_id or "inline"


def transmission_template_id(*, transmission_id: int) -> str | None:
    """:func:`template_id_of` the transmission ``transmission_id``, None when there is none. One query."""
    found = Transmission.objects.filter(pk=transmission_id).only("id", "source", "template_id").first()
    return template_id_of(found) if found is not None else None


def _template_filter(template_id: str) -> Q:
    """The transmissions whose :func:`template_id_of` is ``template_id``: ``inline`` is inline
    content sent through the REST API; ``smtp_<n>`` is SMTP injection ``n``, or a stored
    template that happens to have that name."""
    if template_id == "inline":
        return Q(template_id="", source=TransmissionSource.API)
    found = Q(template_id=template_id, source=TransmissionSource.API)
    smtp_id = smtp_template_transmission(template_id)
    return found | Q(pk=smtp_id, source=TransmissionSource.SMTP) if smtp_id is not None else found


def transmission_uses_template(*, template_id: str, **_signal: Any) -> bool:
    """True while a transmission using this template is submitted (scheduled) or generating.

    The answer to ``templates_app.selectors.template_needed`` (connected in
    ``TransmissionsConfig.ready``), hence the signal's own keywords (``sender``, ``signal``),
    accepted and ignored."""
    return Transmission.objects.filter(template_id=template_id, state__in=_ACTIVE).exists()


def transmission_uses_list(*, list_id: str, **_signal: Any) -> bool:
    """True while a transmission using this recipient list is submitted (scheduled) or generating.

    The answer to ``recipient_lists.selectors.recipient_list_needed`` (connected in
    ``TransmissionsConfig.ready``); the signal's own keywords are accepted and ignored."""
    return Transmission.objects.filter(list_id=list_id, state__in=_ACTIVE).exists()


def _content_summary(transmission: Transmission) -> dict[str, Any]:
    if transmission.template_id:
        return {"template_id": transmission.template_id, "use_draft_template": transmission.use_draft_template}
    return {"template_id": template_id_of(transmission)}


def transmission_list(*, campaign_id: str | None = None, template_id: str | None = None) -> list[dict[str, Any]]:
    """Summaries ``{id, campaign_id, description, state, content: {template_id}}``, newest
    first, in one query. ``template_id`` is what the transmission's events carry
    (:func:`template_id_of`): ``"inline"`` for inline content, ``smtp_<id>`` for an SMTP
    injection (a newcomer found those listed as ``inline``); the filter reads it the same way."""
    queryset = Transmission.objects.order_by("-id").only(
        "id", "campaign_id", "description", "state", "template_id", "use_draft_template", "source"
    )
    if campaign_id:
        queryset = queryset.filter(campaign_id=campaign_id)
    if template_id:
        queryset = queryset.filter(_template_filter(template_id))
    return [
        {
            "id": str(transmission.id),
            "campaign_id": transmission.campaign_id,
            "description": transmission.description,
            "state": transmission.state,
            "content": _content_summary(transmission),
        }
        for transmission in queryset
    ]


def transmission_exists(*, excluding_campaign: str = "") -> bool:
    """Whether any transmission exists, those of the campaign ``excluding_campaign`` (when
    given) left out. One query."""
    queryset = Transmission.objects.all()
    if excluding_campaign:
        queryset = queryset.exclude(campaign_id=excluding_campaign)
    return queryset.exists()


def transmission_recent(*, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` newest transmissions for the console's overview, newest first: the rows
    of :func:`transmission_page` (its counters while generating counted from the messages).
    Two queries at most, whatever ``limit`` is."""
    return transmission_page(limit=limit)[0]


def _iso(value: datetime | None) -> str:
    return iso(value) or ""  # SparkPost reports unset values as ""


def _or_empty(value: Any) -> Any:
    return value if value not in (None, {}, []) else ""


def _generating_counts(ids: list[int]) -> dict[int, tuple[int, int]]:
    """``{transmission id: (generated, failed generation)}`` counted from the messages of
    Generating transmissions (their stored counters are written when they end). One query."""
    rows = (
        Message.objects.filter(transmission_id__in=ids)
        .values("transmission_id")
        .annotate(
            generated=Count("id", filter=Q(state__in=GENERATED_STATES)),
            failed=Count("id", filter=Q(state=MessageState.GENERATION_FAILED)),
        )
    )
    return {row["transmission_id"]: (row["generated"], row["failed"]) for row in rows}


def transmission_page(
    *, campaign_id: str = "", template_id: str = "", state: str = "", before: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], bool]:
    """One page of transmissions, newest first, for the console's list (issue 15): (rows,
    whether more follow). Keyset paging on ``id`` (ids increase): ``before`` is the last id
    of the previous page. Filters as the API's list, but ``template_id`` is
    :func:`template_id_of` (``"inline"`` for inline content, ``smtp_<id>`` for an SMTP
    injection), plus ``state`` (a ``TransmissionState`` value).

    Each row: ``{"id"`` (a numeric string, as the API writes ids), ``"state", "campaign_id",
    "description", "template_id"`` (:func:`template_id_of`), ``"source"`` (a
    ``TransmissionSource`` value), ``"start_time",
    "created_at"`` (aware datetimes or None), ``"num_rcpts", "num_generated",
    "num_failed_gen"}``; the counters of a Generating transmission are counted from its
    messages, as in :func:`transmission_detail`. Two queries whatever ``limit`` is."""
    queryset = Transmission.objects.order_by("-id").only(
        "id", "state", "source", "campaign_id", "description", "template_id", "start_time", "created_at",
        "num_rcpts", "num_generated", "num_failed_gen",
    )  # fmt: skip
    if campaign_id:
        queryset = queryset.filter(campaign_id=campaign_id)
    if template_id:
        queryset = queryset.filter(_template_filter(template_id))
    if state:
        queryset = queryset.filter(state=state)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    found = list(queryset[: limit + 1])
    page = found[:limit]
    generating = [t.id for t in page if t.state == TransmissionState.GENERATING]
    live = _generating_counts(generating) if generating else {}
    rows = []
    for transmission in page:
        generated, failed = transmission.num_generated, transmission.num_failed_gen
        if transmission.state == TransmissionState.GENERATING:
            generated, failed = live.get(transmission.id, (0, 0))
        rows.append({
            "id": str(transmission.id),
            "state": transmission.state,
            "campaign_id": transmission.campaign_id,
            "description": transmission.description,
            "template_id": template_id_of(transmission),
            "source": transmission.source,
            "start_time": transmission.start_time,
            "created_at": transmission.created_at,
            "num_rcpts": transmission.num_rcpts,
            "num_generated": generated,
            "num_failed_gen": failed,
        })  # fmt: skip
    return rows, len(found) > limit


def transmission_detail(*, transmission_id: int) -> dict[str, Any]:
    """The ``results.transmission`` object of SPEC B §1.7; unset values are ``""``.

    While generating, the counters are counted from the messages (one aggregate query).
    """
    transmission = Transmission.objects.filter(pk=transmission_id).first()
    if transmission is None:
        raise errors.NotFound(f"Resource not found:transmission id {transmission_id}")
    num_generated, num_failed_gen = transmission.num_generated, transmission.num_failed_gen
    if transmission.state == TransmissionState.GENERATING:
        num_generated, num_failed_gen = _generating_counts([transmission.id]).get(transmission.id, (0, 0))
    if transmission.template_id:
        content: dict[str, Any] = {
            "template_id": transmission.template_id,
            "use_draft_template": transmission.use_draft_template,
        }
        if transmission.template_version:
            content["template_version"] = transmission.template_version
    else:
        content = dict(transmission.content)
    options = dict(transmission.options)
    for key in ("open_tracking", "click_tracking"):
        options.setdefault(key, "")
    return {
        "id": str(transmission.id),
        "description": transmission.description,
        "state": transmission.state,
        "campaign_id": transmission.campaign_id,
        "content": content,
        "return_path": transmission.return_path,
        "recipients": {"list_id": transmission.list_id} if transmission.list_id else "",
        "num_rcpts": transmission.num_rcpts,
        "num_generated": num_generated,
        "num_failed_gen": num_failed_gen,
        "generation_start_time": _iso(transmission.generation_start_time),
        "generation_end_time": _iso(transmission.generation_end_time),
        "rcpt_list_chunk_size": transmission.rcpt_list_chunk_size,
        "rcpt_list_total_chunks": transmission.rcpt_list_total_chunks,
        "substitution_data": _or_empty(transmission.substitution_data),
        "metadata": _or_empty(transmission.metadata),
        "options": options,
        "start_time": _iso(transmission.start_time),
    }


def message_transmission_id(*, message_id: str) -> int | None:
    """The id of the transmission that sent the message ``message_id`` (20 hex characters, as
    in its ``Message-ID`` header ``<message_id@domain>``), or None when no such message is
    stored. One query, on the unique ``message_id``."""
    return Message.objects.filter(message_id=message_id).values_list("transmission_id", flat=True).first()


def database_now() -> datetime:
    """The database server's clock (``now()``, aware): the one ``created_at`` and an SMTP
    injection's ``generation_start_time`` are stamped with, so ages computed from them do not
    depend on this host's clock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        row = cursor.fetchone()
    assert row is not None
    return row[0]
