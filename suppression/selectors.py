"""Reads of the suppression list (SPEC A.5). ``suppressed_among`` is the contract with
generation: one statement per chunk of addresses."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, Q

from engage import errors
from mailcore.addresses import mailbox_key
from suppression.models import SuppressionEntry, SuppressionSource, SuppressionType, summary_key
from suppression.search import SearchQuery

_SUPPRESSED_AMONG = f"SELECT recipient FROM {SuppressionEntry._meta.db_table} WHERE recipient = ANY(%s) AND type = %s"
_COMPLIANCE_AMONG = _SUPPRESSED_AMONG + " AND source = %s"


def suppressed_among(*, addresses: Iterable[str], type: str, compliance_only: bool = False) -> set[str]:
    """The ``addresses`` (as given, any spelling: matched by ``mailbox_key``) that are suppressed for ``type`` (a
    ``SuppressionType`` value), in one statement that uses the ``(recipient, type)`` index.
    A chunk of ~500 addresses is one index probe each. ``compliance_only``: count only
    ``Compliance`` entries, the ones ``options.skip_suppression`` cannot skip (SPEC A.5)."""
    by_key: dict[str, list[str]] = {}
    for address in addresses:
        by_key.setdefault(mailbox_key(address), []).append(address)
    if not by_key:
        return set()
    with connection.cursor() as cursor:
        if compliance_only:
            cursor.execute(_COMPLIANCE_AMONG, [list(by_key), type, SuppressionSource.COMPLIANCE])
        else:
            cursor.execute(_SUPPRESSED_AMONG, [list(by_key), type])
        found = [row[0] for row in cursor.fetchall()]
    return {address for key in found for address in by_key[key]}


def suppression_search(*, query: SearchQuery) -> tuple[list[SuppressionEntry], int, bool]:
    """``(page, total_count, more)``: the entries matching ``query`` after its cursor, sorted
    by ``(updated, id)``; ``total_count`` counts every match, cursor aside. Two statements."""
    matching = SuppressionEntry.objects.all()
    if query.start is not None:
        matching = matching.filter(updated__gte=query.start)
    if query.end is not None:
        matching = matching.filter(updated__lte=query.end)
    if query.types:
        matching = matching.filter(type__in=query.types)
    if query.sources:
        matching = matching.filter(source__in=query.sources)
    if query.description:
        matching = matching.filter(description__icontains=query.description)
    total = matching.count()
    page = matching
    if query.after is not None:
        updated, pk = query.after
        if query.ascending:
            page = page.filter(Q(updated__gt=updated) | Q(updated=updated, id__gt=pk))
        else:
            page = page.filter(Q(updated__lt=updated) | Q(updated=updated, id__lt=pk))
    order = ("updated", "id") if query.ascending else ("-updated", "-id")
    rows = list(page.order_by(*order)[: query.per_page + 1])
    return rows[: query.per_page], total, len(rows) > query.per_page


def suppression_get(*, recipient: str, types: Iterable[str] = ()) -> list[SuppressionEntry]:
    """``recipient``'s entries (stored form), of ``types`` when given, ordered by type.
    Errors: 404 / 1600 (``RecipientNotFound``) when there is none."""
    matching = SuppressionEntry.objects.filter(recipient=recipient)
    kinds = tuple(types)
    if kinds:
        matching = matching.filter(type__in=kinds)
    found = list(matching.order_by("type"))
    if not found:
        raise errors.RecipientNotFound(f"'{recipient}' is not on the suppression list")
    return found


def suppression_summary() -> dict[str, int]:
    """Counts by source (summary keys: ``bounce_rule``...), by type, and ``total``. One statement."""
    counts = {summary_key(source): 0 for source in SuppressionSource.values}
    counts |= {kind: 0 for kind in SuppressionType.values}
    total = 0
    for row in SuppressionEntry.objects.order_by().values("source", "type").annotate(n=Count("id")):
        counts[summary_key(row["source"])] += row["n"]
        counts[row["type"]] += row["n"]
        total += row["n"]
    counts["total"] = total
    return counts
