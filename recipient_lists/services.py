"""Writes to stored recipient lists (SPEC B §3.3). Recipients are stored with
``bulk_create`` in batches, never one query per recipient."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from engage import errors
from mailcore.ids import first_free_id, slug_from_name
from recipient_lists.models import Recipient, RecipientList
from recipient_lists.selectors import recipient_list_get, recipient_list_ids_like, recipient_list_in_use

BATCH_SIZE = 5000
_GENERATION_ATTEMPTS = 5


def _store_recipients(recipient_list: RecipientList, recipients: list[dict]) -> None:
    # bulk_create makes a list of every object it is given: a batch at a time keeps one
    # batch of model instances in memory, not one per recipient of the list.
    for start in range(0, len(recipients), BATCH_SIZE):
        batch = recipients[start : start + BATCH_SIZE]
        Recipient.objects.bulk_create(
            [
                Recipient(recipient_list=recipient_list, position=start + offset, data=data)
                for offset, data in enumerate(batch)
            ]
        )


def _require_recipients(recipients: list[dict]) -> None:
    if not recipients:
        raise errors.NoValidRecipients("At least one valid recipient is required")


def recipient_list_create(
    *,
    list_id: str | None,
    name: str | None,
    description: str = "",
    attributes: dict[str, Any] | None = None,
    recipients: list[dict],
) -> RecipientList:
    """Store a list of already-normalized recipients.

    400 / 5002 when none is valid; a given id that exists is 409 / 1602. Without an id one
    is generated from the name (slug, then ``-2``, ``-3``…); the name defaults to the id.
    """
    _require_recipients(recipients)
    fields = {"description": description, "attributes": attributes or {}, "total_accepted_recipients": len(recipients)}
    if list_id is not None:
        candidates: list[str | None] = [list_id]
    else:
        base = slug_from_name(name or "", fallback="list")
        candidates = [None] * _GENERATION_ATTEMPTS
    for candidate in candidates:
        if candidate is None:
            candidate = first_free_id(base, taken=lambda b: recipient_list_ids_like(base=b))
        try:
            with transaction.atomic():
                recipient_list = RecipientList.objects.create(id=candidate, name=name or candidate, **fields)
                _store_recipients(recipient_list, recipients)
                return recipient_list
        except IntegrityError:
            if list_id is not None:
                raise errors.Conflict(f"List '{list_id}' already exists") from None
    raise errors.Conflict(f"Could not generate a free list id from name '{name}'")


def recipient_list_update(
    *,
    list_id: str,
    name: str | None = None,
    description: str | None = None,
    attributes: dict[str, Any] | None = None,
    recipients: list[dict] | None = None,
) -> RecipientList:
    """Update the given fields; ``attributes`` and ``recipients`` replace the stored values.

    404 / 1600 if absent; 409 / 1602 while a transmission uses the list; 400 / 5002 when
    recipients were sent and none is valid.
    """
    if recipients is not None:
        _require_recipients(recipients)
    with transaction.atomic():
        recipient_list = RecipientList.objects.select_for_update().filter(pk=list_id).first()
        if recipient_list is None:
            recipient_list_get(list_id=list_id)  # raises NotFound
        assert recipient_list is not None
        if recipient_list_in_use(list_id=list_id):
            raise errors.ResourceInUse(f"List '{list_id}' is in use by msg generation")
        update_fields = ["updated_at"]
        for field, value in (("name", name), ("description", description), ("attributes", attributes)):
            if value is not None:
                setattr(recipient_list, field, value)
                update_fields.append(field)
        if recipients is not None:
            Recipient.objects.filter(recipient_list=recipient_list).delete()
            _store_recipients(recipient_list, recipients)
            recipient_list.total_accepted_recipients = len(recipients)
            update_fields.append("total_accepted_recipients")
        recipient_list.save(update_fields=update_fields)
    return recipient_list


def recipient_list_delete(*, list_id: str) -> None:
    """Delete the list and its recipients; 404 / 1600 if absent, 409 / 1602 while in use."""
    with transaction.atomic():
        recipient_list = RecipientList.objects.select_for_update().filter(pk=list_id).first()
        if recipient_list is None:
            recipient_list_get(list_id=list_id)  # raises NotFound
        assert recipient_list is not None
        if recipient_list_in_use(list_id=list_id):
            raise errors.ResourceInUse(f"List '{list_id}' is in use by msg generation")
        Recipient.objects.filter(recipient_list=recipient_list).delete()
        recipient_list.delete()
