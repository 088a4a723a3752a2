"""Template tags of the console: ``{% load console %}{% console_pages as pages %}`` gives
``console.pages.PAGES`` to a template the console's views do not render (the admin index);
``{{ state|state_label }}`` is a transmission state in the words every page shows."""

from __future__ import annotations

from django import template

from console.pages import PAGES, Page
from transmissions.models import TransmissionState

register = template.Library()


@register.simple_tag
def console_pages() -> tuple[Page, ...]:
    return PAGES


@register.filter
def state_label(state: str) -> str:
    """A transmission state (the API's value, ``submitted``) as the console names it
    (``TransmissionState``'s label, ``Submitted``): the list's rows and its state filter, the
    overview and the detail page all show these words. An unknown value is shown as it is."""
    try:
        return str(TransmissionState(state).label)
    except ValueError:
        return state
