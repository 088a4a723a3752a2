"""Ids generated from names (SPEC A.1): pure, shared by templates and recipient lists (the two
stored resources whose id a name can give), so it sits below both in the core."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_ID_BYTES = 64
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slug_from_name(name: str, *, fallback: str) -> str:
    """ASCII-folded, lower-case ``name`` with ``-`` for every run of non-alphanumerics, trimmed of dashes.

    Falls back to ``fallback`` when nothing alphanumeric is left. Leaves room under
    ``MAX_ID_BYTES`` for a ``-N`` collision suffix.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NON_ALNUM.sub("-", ascii_name.lower()).strip("-")
    slug = slug[: MAX_ID_BYTES - 8].rstrip("-")
    return slug or fallback


def first_free_id(base: str, *, taken: Callable[[str], set[str]]) -> str:
    """``base`` if free, else ``base-2``, ``base-3``…; ``taken(base)`` returns the used ids starting with it."""
    used = taken(base)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


#: The campaign of every test send from the template editor (``console.views.template_test_send``),
#: so the overview's first steps, the overview and the report can tell them apart.
TEST_SEND_CAMPAIGN = "admin-test-send"

#: What an SMTP-injected transmission's events and tracking tokens carry as ``template_id``:
#: ``smtp_<transmission id>``, as SparkPost's real events do (SMTP-INJECTION.md §1.7, §5.6).
SMTP_TEMPLATE_PREFIX = "smtp_"
_SMTP_TEMPLATE = re.compile(r"smtp_([0-9]{1,19})")


def smtp_template_id(transmission_id: int | str) -> str:
    """The ``template_id`` of the SMTP-injected transmission ``transmission_id``: ``smtp_<id>``."""
    return f"{SMTP_TEMPLATE_PREFIX}{transmission_id}"


def smtp_template_transmission(template_id: str) -> int | None:
    """The transmission id an SMTP injection's ``template_id`` names (``smtp_42`` → 42), or
    None when ``template_id`` is not of that form. A stored template may be called ``smtp_42``
    too: the caller decides what the name means where both can be meant."""
    found = _SMTP_TEMPLATE.fullmatch(template_id)
    return int(found.group(1)) if found else None
