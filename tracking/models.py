"""The event store (SPEC A.3): one row per event, SparkPost field names.

The table is PARTITIONED BY RANGE (timestamp), one partition per day, so retention drops
whole partitions; it is created by raw SQL in the migration, hence ``managed = False``.
Its primary key is (id, timestamp) and ``(event_id, timestamp)`` is unique, which lets the
lander insert with ON CONFLICT DO NOTHING and re-land a batch after a crash without
duplicates. Type-specific fields that are rarely filtered on live in ``extra``.
"""

from __future__ import annotations

from django.db import models

from mailcore.events import RECORDED

#: The types this table stores: the recorded ones of ``mailcore.events``.
EVENT_TYPE_CHOICES = [(name, name.replace("_", " ").title()) for name in RECORDED]

# The columns of tracking_event other than id, in the order the lander writes them.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "type", "timestamp", "message_id", "transmission_id", "campaign_id",
    "template_id", "template_version", "rcpt_to", "raw_rcpt_to", "recipient_domain",
    "rcpt_meta", "rcpt_tags", "friendly_from", "subject", "ip_address", "user_agent",
    "accept_language", "target_link_name", "target_link_url", "transactional",
    "bounce_class", "error_code", "reason", "extra",
)  # fmt: skip


#: The jsonb columns of tracking_event (the others are text, a boolean and the timestamp).
EVENT_JSON_COLUMNS = frozenset({"rcpt_meta", "rcpt_tags", "extra"})

# The table's column defaults: what an event that does not carry a field stores.
EVENT_DEFAULTS: dict[str, object] = {
    "message_id": "", "transmission_id": "", "campaign_id": "", "template_id": "", "template_version": "",
    "rcpt_to": "", "raw_rcpt_to": "", "recipient_domain": "", "rcpt_meta": {}, "rcpt_tags": [],
    "friendly_from": "", "subject": "", "ip_address": "", "user_agent": "", "accept_language": "",
    "target_link_name": "", "target_link_url": "", "transactional": False, "bounce_class": "",
    "error_code": "", "reason": "", "extra": {},
}  # fmt: skip


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=40)
    type = models.CharField(max_length=32, choices=EVENT_TYPE_CHOICES)
    timestamp = models.DateTimeField()
    message_id = models.CharField(max_length=40, default="")
    transmission_id = models.CharField(max_length=40, default="")
    campaign_id = models.CharField(max_length=64, default="")
    template_id = models.CharField(max_length=64, default="")
    template_version = models.CharField(max_length=16, default="")
    rcpt_to = models.TextField(default="")
    raw_rcpt_to = models.TextField(default="")
    recipient_domain = models.TextField(default="")
    rcpt_meta = models.JSONField(default=dict)
    rcpt_tags = models.JSONField(default=list)
    friendly_from = models.TextField(default="")
    subject = models.TextField(default="")
    ip_address = models.TextField(default="")
    user_agent = models.TextField(default="")
    accept_language = models.TextField(default="")
    target_link_name = models.TextField(default="")
    target_link_url = models.TextField(default="")
    transactional = models.BooleanField(default=False)
    bounce_class = models.CharField(max_length=8, default="")
    error_code = models.CharField(max_length=8, default="")
    reason = models.TextField(default="")
    extra = models.JSONField(default=dict)

    class Meta:
        managed = False
        db_table = "tracking_event"


class EventOutbox(models.Model):
    """Events written to PostgreSQL in the transaction (or statement) of the change they
    report, for the lander to move into ``tracking_event`` (``tracking.outbox``): the
    send path's events, and a tracking hit's when Redis cannot take it. ``payload`` is a
    JSON array of event records, ``event_id`` and ``timestamp`` already assigned."""

    id = models.BigAutoField(primary_key=True)
    payload = models.JSONField()

    class Meta:
        db_table = "tracking_event_outbox"
