"""Template tags of the console: ``{% load console %}{% console_pages as pages %}`` gives
``console.pages.PAGES`` to a template the console's views do not render (the admin index)."""

from __future__ import annotations

from django import template

from console.pages import PAGES, Page

register = template.Library()


@register.simple_tag
def console_pages() -> tuple[Page, ...]:
    return PAGES
