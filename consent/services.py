"""Writes to the tracking consent register (SPEC A.5). A change is a new row (history kept);
a bulk write is one transaction and one ``INSERT`` (``bulk_create``), never a query per
address."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from consent.models import Consent, TrackingConsent
from engage import errors


@dataclass(frozen=True, slots=True)
class ConsentWrite:
    """One change: ``recipient`` in stored form (``mailbox_key``), ``consent`` a ``Consent`` value,
    ``source`` and ``evidence`` free text within the model's limits."""

    recipient: str
    consent: str
    source: str = ""
    evidence: str = ""


def consent_record(*, writes: list[ConsentWrite]) -> list[TrackingConsent]:
    """Record ``writes`` in order, all or nothing, stamped with one ``recorded_at``: of two
    writes for one address the later is the current one (ids increase in order). Returns the
    new rows. Raises ValueError for a consent that is not a ``Consent`` value."""
    bad = [write.consent for write in writes if write.consent not in Consent.values]
    if bad:
        raise ValueError(f"unknown consent value(s): {bad}")
    now = timezone.now()
    rows = [
        TrackingConsent(
            recipient=write.recipient, consent=write.consent, source=write.source, evidence=write.evidence,
            recorded_at=now,
        )
        for write in writes
    ]  # fmt: skip
    with transaction.atomic():
        return TrackingConsent.objects.bulk_create(rows)


def consent_delete(*, recipient: str) -> int:
    """Erase ``recipient``'s records, history included (the default applies again); returns
    how many went. Errors: 404 / 1600 (``RecipientNotFound``) when there were none."""
    deleted, _by_model = TrackingConsent.objects.filter(recipient=recipient).delete()
    if not deleted:
        raise errors.RecipientNotFound(f"'{recipient}' is not in the tracking consent register")
    return deleted
