"""Rollups, per-message first-seen state, and webhooks (issue "What recipients did").

The rollup tables are maintained by ``analytics.rollups`` (called by ``analytics.ingest``)
inside the event lander's transaction, with set-based SQL; no API request ever counts raw
events. The same transaction appends each landed event a webhook may want to the webhook
feed, once whatever the number of webhooks; ``analytics.webhooks`` cuts batches from it.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

# The counters of ``analytics_rollup_hourly``, in order. SparkPost metric names are
# derived from these in ``analytics.metrics.METRICS``.
ROLLUP_COUNTERS: tuple[str, ...] = (
    "injected", "policy_rejected", "generation_failed", "generation_rejected", "delivered",
    "bounce", "hard_bounce", "soft_bounce", "block_bounce", "admin_bounce", "undetermined_bounce",
    "delayed", "rendered", "initial_rendered", "clicked", "unsubscribe",
    "unique_rendered", "unique_initial_rendered", "unique_clicked", "unique_confirmed_opened",
)  # fmt: skip


class RollupCounters(models.Model):
    """The keys and counters the hourly and daily rollups share (``ROLLUP_COUNTERS``)."""

    id = models.BigAutoField(primary_key=True)
    campaign_id = models.CharField(max_length=64)
    template_id = models.CharField(max_length=64)
    domain = models.TextField()
    injected = models.BigIntegerField(db_default=0)
    policy_rejected = models.BigIntegerField(db_default=0)
    generation_failed = models.BigIntegerField(db_default=0)
    generation_rejected = models.BigIntegerField(db_default=0)
    delivered = models.BigIntegerField(db_default=0)
    bounce = models.BigIntegerField(db_default=0)
    hard_bounce = models.BigIntegerField(db_default=0)
    soft_bounce = models.BigIntegerField(db_default=0)
    block_bounce = models.BigIntegerField(db_default=0)
    admin_bounce = models.BigIntegerField(db_default=0)
    undetermined_bounce = models.BigIntegerField(db_default=0)
    delayed = models.BigIntegerField(db_default=0)
    rendered = models.BigIntegerField(db_default=0)
    initial_rendered = models.BigIntegerField(db_default=0)
    clicked = models.BigIntegerField(db_default=0)
    unsubscribe = models.BigIntegerField(db_default=0)
    unique_rendered = models.BigIntegerField(db_default=0)
    unique_initial_rendered = models.BigIntegerField(db_default=0)
    unique_clicked = models.BigIntegerField(db_default=0)
    unique_confirmed_opened = models.BigIntegerField(db_default=0)

    class Meta:
        abstract = True


class RollupHourly(RollupCounters):
    """Event counts per UTC hour x campaign x template x recipient domain.

    ``unique_*`` counters are attributed to the hour (and the message's campaign, template
    and domain) of the message's FIRST event of that kind, ever (see MessageEngagement).
    """

    hour = models.DateTimeField()

    class Meta:
        db_table = "analytics_rollup_hourly"
        constraints = [
            models.UniqueConstraint(fields=["hour", "campaign_id", "template_id", "domain"], name="rollup_hourly_key")
        ]


class RollupDaily(RollupCounters):
    """The hourly counters summed per UTC day (same keys): long windows read whole days
    here and only their partial edge days from the hourly table."""

    day = models.DateTimeField()

    class Meta:
        db_table = "analytics_rollup_daily"
        constraints = [
            models.UniqueConstraint(fields=["day", "campaign_id", "template_id", "domain"], name="rollup_daily_key")
        ]


class LinkRollupHourly(models.Model):
    """Clicks per UTC hour x campaign x template x link (name, URL as written, position).

    ``link_name`` is the click's ``target_link_name`` (``data-msys-linkname``, else title,
    alt or "Raw URL"), or its URL when it has none. ``link_url`` is the link as written in
    the template (``engage_link_template_url``) and ``link_position`` its position in its
    part (``engage_link_position``, from 1); clicks on links sent before those fields existed
    have their ``target_link_url`` and position 0 (``analytics.rollups``).
    ``unique_clicked`` counts messages whose first click on this link fell in the hour.
    """

    id = models.BigAutoField(primary_key=True)
    hour = models.DateTimeField()
    campaign_id = models.CharField(max_length=64)
    template_id = models.CharField(max_length=64)
    link_name = models.TextField()
    link_url = models.TextField()
    link_position = models.IntegerField(db_default=0)
    clicked = models.BigIntegerField(db_default=0)
    unique_clicked = models.BigIntegerField(db_default=0)

    class Meta:
        db_table = "analytics_link_rollup_hourly"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign_id", "template_id", "link_name", "link_url", "link_position"],
                name="link_rollup_hourly_key",
            )
        ]


class MessageEngagement(models.Model):
    """First-seen engagement per message: the state behind the unique counters.

    ``prev_*`` hold the value of ``first_*`` before the last upsert, so one
    ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` tells whether a batch moved a first
    occurrence (new, or earlier than known when events land out of order).
    """

    message_id = models.CharField(max_length=40, primary_key=True)
    campaign_id = models.CharField(max_length=64, default="")
    template_id = models.CharField(max_length=64, default="")
    domain = models.TextField(default="")
    first_open = models.DateTimeField(null=True)
    first_initial_open = models.DateTimeField(null=True)
    first_click = models.DateTimeField(null=True)
    first_confirmed = models.DateTimeField(null=True)
    prev_open = models.DateTimeField(null=True)
    prev_initial_open = models.DateTimeField(null=True)
    prev_click = models.DateTimeField(null=True)
    prev_confirmed = models.DateTimeField(null=True)

    class Meta:
        db_table = "analytics_message_engagement"


class MessageLinkClick(models.Model):
    """First click per message and link (link name, URL as written, position: see
    :class:`LinkRollupHourly`): the state behind link unique clicks."""

    id = models.BigAutoField(primary_key=True)
    message_id = models.CharField(max_length=40)
    link_name = models.TextField()
    link_url = models.TextField()
    link_position = models.IntegerField(db_default=0)
    campaign_id = models.CharField(max_length=64, default="")
    template_id = models.CharField(max_length=64, default="")
    first_click = models.DateTimeField()
    prev_click = models.DateTimeField(null=True)

    class Meta:
        db_table = "analytics_message_link_click"
        constraints = [
            models.UniqueConstraint(
                fields=["message_id", "link_name", "link_url", "link_position"], name="message_link_click_key"
            )
        ]


class WebhookAuthType(models.TextChoices):
    NONE = "none"
    BASIC = "basic"
    OAUTH2 = "oauth2"


# The newest position of the webhook feed (0 when it is empty): a SQL function (migration
# 0005) so a new webhook's cursor can default to it in the database, whoever creates the row.
FEED_HEAD = models.Func(function="engage_webhook_feed_head", output_field=models.BigIntegerField())


class Webhook(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=1024)
    target = models.URLField(max_length=2048)
    events = ArrayField(models.CharField(max_length=32))
    auth_type = models.CharField(max_length=16, choices=WebhookAuthType.choices, default=WebhookAuthType.NONE)
    auth_token = models.CharField(max_length=1024, default="", blank=True)
    auth_request_details = models.JSONField(default=dict, blank=True)
    auth_credentials = models.JSONField(default=dict, blank=True)
    custom_headers = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_successful = models.DateTimeField(null=True, blank=True)
    last_failure = models.DateTimeField(null=True, blank=True)
    # DELETE hides the webhook and stops new batches; batches already made still drain.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The webhook's cursor over WebhookFeedEvent: it has been given (or did not want) every
    # event up to this position. Starts at the feed's head (a new webhook gets no older
    # events) and is reset to it on reactivation; moved only by ``webhook_batches_build``
    # (raw SQL, the row locked), never by a full ``save()``.
    feed_position = models.BigIntegerField(db_default=FEED_HEAD)

    class Meta:
        db_table = "analytics_webhook"


class WebhookFeedEvent(models.Model):
    """A landed event of a type some active webhook wants: ONE row per event, whatever the
    number of webhooks (written by the lander, ``analytics.rollups``).

    ``position`` is commit-ordered: the lander takes a transaction-level advisory lock
    (``analytics.rollups.FEED_LOCK``, held until its commit) before drawing positions, so a
    transaction can only draw positions once every transaction that drew smaller ones has
    committed (or rolled back). A reader that sees position p therefore sees every committed
    row below p, and a webhook's cursor (``Webhook.feed_position``) never passes an event
    that has yet to commit. Rows every active webhook's cursor has passed are deleted by the
    batch builder.
    """

    position = models.BigAutoField(primary_key=True)
    event_pk = models.BigIntegerField()
    event_timestamp = models.DateTimeField()
    type = models.CharField(max_length=32)
    landed_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "analytics_webhook_feed"


class WebhookPendingEvent(models.Model):
    """A stored event queued for ONE webhook: by a replay (``webhook_replay``), and by the
    lander before the feed existed (rows left at migration 0005 are drained the same way)."""

    id = models.BigAutoField(primary_key=True)
    webhook_id = models.UUIDField(db_index=True)
    event_pk = models.BigIntegerField()
    event_timestamp = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "analytics_webhook_pending"


class BatchState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    EXPIRED = "expired"


class WebhookPayload(models.Model):
    """The exact bytes a batch POSTs (a JSON array of ``{"msys": ...}`` records), stored once
    and shared by the batches of every webhook that takes the same events at the same cursor."""

    id = models.BigAutoField(primary_key=True)
    content = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "analytics_webhook_payload"


class WebhookBatch(models.Model):
    """One POST to a webhook target. Its body is frozen at creation, so a retry sends the
    same bytes (same ``X-MessageSystems-Batch-ID``, same ``event_id`` values)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook_id = models.UUIDField(db_index=True)
    target = models.URLField(max_length=2048, default="")  # the target when the batch was made
    body = models.ForeignKey(WebhookPayload, null=True, on_delete=models.PROTECT, related_name="+")
    payload = models.JSONField(null=True)  # batches made before migration 0005 (``body`` is NULL)
    batch_size = models.IntegerField()
    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.PENDING)
    attempts = models.IntegerField(default=0)
    response_code = models.CharField(max_length=8, default="", blank=True)
    failure = models.TextField(default="", blank=True)
    latency_ms = models.IntegerField(null=True)
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True)
    next_attempt_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "analytics_webhook_batch"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_batch_due")]
