"""Reads about transmissions: the API's list and detail, and the in-use checks other apps need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q

from engage import errors
from engage.api.fields import iso
from transmissions.models import GENERATED_STATES, Message, MessageState, Transmission, TransmissionState

_ACTIVE = (TransmissionState.SUBMITTED, TransmissionState.GENERATING)


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
    return {"template_id": "inline"}


def transmission_list(*, campaign_id: str | None = None, template_id: str | None = None) -> list[dict[str, Any]]:
    """Summaries ``{id, campaign_id, description, state, content: {template_id}}``, newest
    first, in one query. Inline content is reported (and filterable) as ``"inline"``."""
    queryset = Transmission.objects.order_by("-id").only(
        "id", "campaign_id", "description", "state", "template_id", "use_draft_template"
    )
    if campaign_id:
        queryset = queryset.filter(campaign_id=campaign_id)
    if template_id:
        queryset = queryset.filter(template_id="" if template_id == "inline" else template_id)
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


def transmission_recent(*, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` newest transmissions for the console's overview, newest first:
    ``{id, state, campaign_id, template_id, num_rcpts, num_generated, num_failed_gen,
    start_time, created_at}`` (``template_id`` ``"inline"`` for inline content; times aware
    datetimes or None). The counters follow ``transmission_detail``'s rule: while generating,
    counted from the messages. Two queries whatever ``limit`` is."""
    transmissions = list(
        Transmission.objects.order_by("-id").only(
            "id", "state", "campaign_id", "template_id", "num_rcpts", "num_generated", "num_failed_gen",
            "start_time", "created_at",
        )[:limit]
    )  # fmt: skip
    generating = [t.id for t in transmissions if t.state == TransmissionState.GENERATING]
    counts = {t.id: (t.num_generated, t.num_failed_gen) for t in transmissions}
    if generating:
        rows = (
            Message.objects.filter(transmission_id__in=generating)
            .values("transmission_id")
            .annotate(
                generated=Count("id", filter=Q(state__in=GENERATED_STATES)),
                failed=Count("id", filter=Q(state=MessageState.GENERATION_FAILED)),
            )
        )
        counts.update({row["transmission_id"]: (row["generated"], row["failed"]) for row in rows})
    return [
        {
            "id": str(t.id),
            "state": t.state,
            "campaign_id": t.campaign_id,
            "template_id": t.template_id or "inline",
            "num_rcpts": t.num_rcpts,
            "num_generated": counts[t.id][0],
            "num_failed_gen": counts[t.id][1],
            "start_time": t.start_time,
            "created_at": t.created_at,
        }
        for t in transmissions
    ]


def _iso(value: datetime | None) -> str:
    return iso(value) or ""  # SparkPost reports unset values as ""


def _or_empty(value: Any) -> Any:
    return value if value not in (None, {}, []) else ""


def transmission_detail(*, transmission_id: int) -> dict[str, Any]:
    """The ``results.transmission`` object of SPEC B §1.7; unset values are ``""``.

    While generating, the counters are counted from the messages (one aggregate query).
    """
    transmission = Transmission.objects.filter(pk=transmission_id).first()
    if transmission is None:
        raise errors.NotFound(f"Resource not found:transmission id {transmission_id}")
    num_generated, num_failed_gen = transmission.num_generated, transmission.num_failed_gen
    if transmission.state == TransmissionState.GENERATING:
        counts = Message.objects.filter(transmission_id=transmission.id).aggregate(
            generated=Count("id", filter=Q(state__in=GENERATED_STATES)),
            failed=Count("id", filter=Q(state=MessageState.GENERATION_FAILED)),
        )
        num_generated, num_failed_gen = counts["generated"], counts["failed"]
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
