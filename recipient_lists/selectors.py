"""Reads of stored recipient lists. ``recipient_list_iter_recipients`` is the contract with transmissions."""

from __future__ import annotations

from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.dispatch import Signal

from engage import errors
from recipient_lists.models import Recipient, RecipientList

#: Sent before a recipient list is replaced or deleted: "does a row of yours still need list
#: ``list_id``?". A receiver is ``(sender, *, list_id: str, **kwargs) -> bool``; ``transmissions``
#: connects ``transmissions.selectors.transmission_uses_list`` in ``TransmissionsConfig.ready``.
recipient_list_needed = Signal()


def recipient_list_get(*, list_id: str) -> RecipientList:
    """The list row (recipients not loaded); 404 / 1600 "List 'x' does not exist"."""
    recipient_list = RecipientList.objects.filter(pk=list_id).first()
    if recipient_list is None:
        raise errors.NotFound(f"List '{list_id}' does not exist")
    return recipient_list


def recipient_list_in_use(*, list_id: str) -> bool:
    """True when an app above recipient lists still needs the list: a transmission submitted
    (scheduled) or generating with it. Its update and delete refuse it then (409 / 1602,
    SPEC B §3.3).

    Asked through a Django signal (``recipient_list_needed``) for the reason
    ``templates_app.selectors.template_in_use`` gives: transmissions sits above this app in
    pyproject.toml's layers contract. Receivers only read; their errors propagate, and no
    receiver connected raises ``ImproperlyConfigured`` (fails closed, a 500 / 1500 at the API).
    """
    if not recipient_list_needed.has_listeners(sender=RecipientList):
        raise ImproperlyConfigured(
            "no receiver answers recipient_lists.selectors.recipient_list_needed (transmissions connects one "
            "in TransmissionsConfig.ready): cannot tell whether the list is in use"
        )
    return any(answer for _receiver, answer in recipient_list_needed.send(sender=RecipientList, list_id=list_id))


def recipient_list_list() -> QuerySet[RecipientList]:
    """Every list's summary row, one query."""
    return RecipientList.objects.order_by("id")


def recipient_list_recipients(*, list_id: str) -> list[dict]:
    """Every recipient of the list in order, in the normalized shape; one query."""
    return list(Recipient.objects.filter(recipient_list_id=list_id).order_by("position").values_list("data", flat=True))


def recipient_list_iter_recipients(*, list_id: str, chunk_size: int = 5000) -> Iterator[dict]:
    """The list's recipients in order, in the shape of ``recipients.normalize_recipient``.

    Raises NotFound (404 / 1600) before yielding when the list does not exist. Reads in
    keyset-paginated chunks of ``chunk_size`` (one query per chunk, never per recipient), so
    a 100,000-recipient list never sits in memory at once.
    """
    recipient_list_get(list_id=list_id)
    last = -1
    while True:
        chunk = list(
            Recipient.objects.filter(recipient_list_id=list_id, position__gt=last)
            .order_by("position")
            .values_list("position", "data")[:chunk_size]
        )
        for _position, data in chunk:
            yield data
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]


def recipient_list_ids_like(*, base: str) -> set[str]:
    return set(RecipientList.objects.filter(Q(pk=base) | Q(pk__startswith=f"{base}-")).values_list("pk", flat=True))


def recipient_list_recipients_page(*, list_id: str, offset: int, limit: int) -> list[dict]:
    """``limit`` recipients of the list from the ``offset``-th (0-based, in order), in the
    normalized shape; one query over the ``(list, position)`` index, whatever the list's size."""
    rows = Recipient.objects.filter(recipient_list_id=list_id).order_by("position")
    return list(rows.values_list("data", flat=True)[max(offset, 0) : max(offset, 0) + max(limit, 0)])
