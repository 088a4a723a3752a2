from __future__ import annotations

import hashlib

from django.contrib.postgres.fields import ArrayField
from django.db import models


def hash_key(raw_key: str) -> str:
    """SHA-256 of the key. Keys are 160-bit random values, so a fast hash is safe here."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


class ApiKey(models.Model):
    label = models.CharField(max_length=1024)
    prefix = models.CharField(max_length=8, help_text="The first characters of the key, for recognising it")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    grants = ArrayField(models.CharField(max_length=64), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_any_grant(self, needed: tuple[str, ...]) -> bool:
        return any(grant in self.grants for grant in needed)

    # DRF treats request.user as a user object; a key is its own principal.
    is_authenticated = True
