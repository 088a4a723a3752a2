"""Stored recipient lists (SPEC B §3.1). Recipients are rows, written in bulk.

Each ``Recipient.data`` holds one recipient in the normalized shape of
``recipient_lists.recipients.normalize_recipient``; ``position`` keeps the order sent.
"""

from __future__ import annotations

from django.db import models


class RecipientList(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=1024)
    description = models.CharField(max_length=1024, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    total_accepted_recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class Recipient(models.Model):
    recipient_list = models.ForeignKey(RecipientList, on_delete=models.CASCADE, related_name="recipients")
    position = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        ordering = ["recipient_list", "position"]
        constraints = [
            models.UniqueConstraint(fields=["recipient_list", "position"], name="recipient_list_position_unique")
        ]

    def __str__(self) -> str:
        return self.data.get("address", {}).get("email", "")
