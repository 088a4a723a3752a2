"""Template tags of the console: ``{% load console %}{% console_pages as pages %}`` gives
``console.pages.PAGES`` to a template the console's views do not render (the admin index);
``{{ state|state_label }}`` is a transmission state in the words every page shows;
``{{ moment|when }}`` is a date and time as every page writes it."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

from console.pages import PAGES, Page
from transmissions.models import TransmissionState

register = template.Library()


@register.simple_tag
def console_pages() -> tuple[Page, ...]:
    return PAGES


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
def state_label(state: str) -> str:
    """A transmission state (the API's value, ``submitted``) as the console names it
    (``TransmissionState``'s label, ``Submitted``): the list's rows and its state filter, the
    overview and the detail page all show these words. An unknown value is shown as it is."""
    try:
        return str(TransmissionState(state).label)
    except ValueError:
        return state
