"""Reads about transmissions that other apps need."""

from __future__ import annotations


def transmission_uses_template(*, template_id: str) -> bool:
    """True while a transmission using this template is submitted (scheduled) or generating."""
    return False


def transmission_uses_list(*, list_id: str) -> bool:
    """True while a transmission using this recipient list is submitted (scheduled) or generating."""
    return False
