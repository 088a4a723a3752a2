"""The suppression list (SPEC A.5, B §11): the addresses Engage must not mail, one row per
(recipient, type).

``recipient`` is stored as its ``mailcore.addresses.mailbox_key`` (addresses match
lower-cased, whatever their Unicode form or domain spelling). The unique index on
``(recipient, type)`` is also the one generation uses to check a chunk of addresses in one
statement (``suppression.selectors.suppressed_among``: ``recipient = ANY(array) AND type = x``,
an index scan per address); ``(updated, id)`` serves the search, which pages by a keyset on
those two columns in either direction.
"""

from __future__ import annotations

from django.db import models

#: ``description`` holds at most this many UTF-8 bytes (SPEC A.5).
MAX_DESCRIPTION_BYTES = 1024
#: A lower-cased address of 254 characters may grow (``"İ".lower()`` is two code points).
MAX_RECIPIENT_CHARS = 512


class SuppressionType(models.TextChoices):
    """The message class an entry blocks: a transactional message checks ``transactional``
    entries, any other message ``non_transactional`` ones (SPEC A.5)."""

    TRANSACTIONAL = "transactional"
    NON_TRANSACTIONAL = "non_transactional"


class SuppressionSource(models.TextChoices):
    """Where an entry came from (SPEC B §11.7). API writes are ``Manually Added``;
    ``Compliance`` is set by staff in the admin only, and the API cannot change or delete it."""

    MANUALLY_ADDED = "Manually Added"
    BOUNCE_RULE = "Bounce Rule"
    SPAM_COMPLAINT = "Spam Complaint"
    LIST_UNSUBSCRIBE = "List Unsubscribe"
    UNSUBSCRIBE_LINK = "Unsubscribe Link"
    COMPLIANCE = "Compliance"


#: What generation records for a message to an address suppressed for its type (SPEC A.5,
#: B §11.8): its ``injection`` and a ``bounce`` of this class, error code and reason.
SUPPRESSED_BOUNCE_CLASS = "25"
SUPPRESSED_ERROR_CODE = "554"
SUPPRESSED_REASON = "554 5.7.1 recipient address was suppressed due to customer policy"

#: The bounce classes that add an entry: the hard ones (SPEC A.5, B §11.7). Class 25 is the
#: result of suppression and never adds one.
HARD_BOUNCE_CLASSES = frozenset({"10", "30", "90"})

#: The landed event types that add an entry, with its source and types (SPEC A.5, B §11.7);
#: a ``bounce`` only when its class is in :data:`HARD_BOUNCE_CLASSES`.
AUTOMATIC_ENTRIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bounce": (SuppressionSource.BOUNCE_RULE, (SuppressionType.TRANSACTIONAL, SuppressionType.NON_TRANSACTIONAL)),
    "list_unsubscribe": (SuppressionSource.LIST_UNSUBSCRIBE, (SuppressionType.NON_TRANSACTIONAL,)),
    "link_unsubscribe": (SuppressionSource.UNSUBSCRIBE_LINK, (SuppressionType.NON_TRANSACTIONAL,)),
}


def type_checked(*, transactional: bool) -> str:
    """The entry type a message checks: ``transactional`` for a transactional message,
    ``non_transactional`` for any other (SPEC A.5)."""
    return SuppressionType.TRANSACTIONAL if transactional else SuppressionType.NON_TRANSACTIONAL


def summary_key(source: str) -> str:
    """The ``/summary`` key of a source: ``Bounce Rule`` → ``bounce_rule`` (SPEC B §11.4)."""
    return source.lower().replace(" ", "_")


class SuppressionEntry(models.Model):
    recipient = models.CharField(
        max_length=MAX_RECIPIENT_CHARS, help_text="canonical address (mailcore.addresses.mailbox_key)"
    )
    type = models.CharField(max_length=32, choices=SuppressionType.choices)
    source = models.CharField(
        max_length=32, choices=SuppressionSource.choices, default=SuppressionSource.MANUALLY_ADDED
    )
    description = models.CharField(max_length=MAX_DESCRIPTION_BYTES, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated", "-id"]
        verbose_name = "suppression entry"
        verbose_name_plural = "suppression list"
        constraints = [
            models.UniqueConstraint(fields=["recipient", "type"], name="suppression_recipient_type_unique"),
            models.CheckConstraint(condition=models.Q(type__in=SuppressionType.values), name="suppression_type_valid"),
            models.CheckConstraint(
                condition=models.Q(source__in=SuppressionSource.values), name="suppression_source_valid"
            ),
        ]
        indexes = [models.Index(fields=["updated", "id"], name="suppression_updated_id")]

    def __str__(self) -> str:
        return f"{self.recipient} ({self.type})"
