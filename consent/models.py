"""The tracking consent register (SPEC A.5, "Tracking consent"): Engage's own, no SparkPost
equivalent.

Every change is a row (history kept); an address's current consent is its latest row by
``(recorded_at, id)``. ``recipient`` is stored as its ``mailcore.addresses.mailbox_key``. The index on
``(recipient, recorded_at, id)`` serves both the per-batch lookup of generation and the lander
(``consent.selectors.consent_among``: ``DISTINCT ON (recipient) ... WHERE recipient = ANY``)
and one address's history.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from mailcore import consent as rule

#: Limits of the stored strings, in characters.
MAX_RECIPIENT_CHARS = 512
MAX_SOURCE_CHARS = 128
MAX_EVIDENCE_CHARS = 4096


class Consent(models.TextChoices):
    """An address's choice about tracking (the values are ``mailcore.consent``'s)."""

    GRANTED = rule.GRANTED
    DENIED = rule.DENIED


class TrackingConsent(models.Model):
    recipient = models.CharField(
        max_length=MAX_RECIPIENT_CHARS, help_text="canonical address (mailcore.addresses.mailbox_key)"
    )
    consent = models.CharField(max_length=16, choices=Consent.choices)
    source = models.CharField(max_length=MAX_SOURCE_CHARS, blank=True, default="", help_text="where it was given")
    evidence = models.TextField(
        max_length=MAX_EVIDENCE_CHARS, blank=True, default="", help_text="what was shown, where"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = "tracking consent record"
        verbose_name_plural = "tracking consent register"
        constraints = [
            models.CheckConstraint(condition=models.Q(consent__in=Consent.values), name="tracking_consent_valid"),
        ]
        indexes = [models.Index(fields=["recipient", "recorded_at", "id"], name="tracking_consent_latest")]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.consent}"
