"""A stored template: one row holding its draft and its published version (SPEC B §2.1).

A template has at most one draft and at most one published version. Each write of a version
takes the next number from ``last_version``; that number is what events report as
``template_version``. Publishing moves the draft (with its number) to the published slot.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models


class Template(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=1024)
    description = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_use = models.DateTimeField(null=True, blank=True)
    last_version = models.PositiveIntegerField(default=0)

    draft_content = models.JSONField(null=True, blank=True)
    draft_options = models.JSONField(null=True, blank=True)
    draft_version = models.PositiveIntegerField(null=True, blank=True)
    draft_updated_at = models.DateTimeField(null=True, blank=True)

    published_content = models.JSONField(null=True, blank=True)
    published_options = models.JSONField(null=True, blank=True)
    published_version = models.PositiveIntegerField(null=True, blank=True)
    published_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(draft_content__isnull=False) | models.Q(published_content__isnull=False),
                name="template_has_a_version",
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def has_draft(self) -> bool:
        return self.draft_content is not None

    @property
    def has_published(self) -> bool:
        return self.published_content is not None

    @property
    def last_update_time(self) -> datetime:
        return max(t for t in (self.draft_updated_at, self.published_updated_at) if t is not None)
