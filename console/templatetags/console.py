"""Template tags of the console: ``{% load console %}{% console_pages as pages %}`` gives
``console.pages.PAGES`` to a template the console's views do not render;
``{{ state|state_label:start_time }}`` is a transmission state in the words every page shows;
``{{ moment|when }}`` is a date and time as every page writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template

from console.pages import PAGES, Page, pages_for
from transmissions.models import TransmissionState

register = template.Library()


@register.simple_tag(takes_context=True)
def console_pages(context: Any) -> tuple[Page, ...]:
    """The pages the signed-in user may use (``console.pages.pages_for``)."""
    request = context.get("request")
    return pages_for(request.user) if request is not None else PAGES


#: How every console page writes a moment (``2026-11-30 19:39:13 UTC``).
WHEN_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


@register.filter
def when(moment: datetime | str | None) -> str:
    """``moment`` (an aware datetime, or the API's ISO 8601 text) in UTC as
    :data:`WHEN_FORMAT`; ``""`` for None or ``""``; text that is no date is shown as it is."""
    if not moment:
        return ""
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        parsed = moment
    if parsed.tzinfo is None:  # naive values are UTC in Engage (USE_TZ, TIME_ZONE = "UTC")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(WHEN_FORMAT)


@register.filter
def state_label(state: str, start_time: datetime | str | None = None) -> str:
    """A transmission state (the API's value, ``submitted``) as the console names it
    (``TransmissionState``'s label, ``Submitted``), and ``Submitted (scheduled)`` for a
    submitted one with a ``start_time`` (an aware datetime or the API's ISO text; "" or None
    for none): the list's rows, the overview and the detail page all show these words
    (``{{ t.state|state_label:t.start_time }}``). An unknown value is shown as it is."""
    try:
        words = str(TransmissionState(state).label)
    except ValueError:
        return state
    return f"{words} (scheduled)" if state == TransmissionState.SUBMITTED and start_time else words
