"""Transmissions and their messages (one row per recipient).

A ``Transmission`` keeps the request as accepted (content or template reference, options,
metadata, substitution data) and the generation counters the GET answers with. A
``Message`` is one recipient of one transmission and carries the delivery state machine
that makes sending crash safe (see ``transmissions.sending``)::

    queued ──claim──▶ sending ──2xx──▶ delivered
      ▲                  │ ──5xx (or 4xx on the last attempt)──▶ bounced
      │                  │ ──any fault of this message──▶ generation_failed
      │                  └──4xx / connection lost──▶ delayed ──retry──▶ sending ...
      └──worker died (claim stale)──┘   (past ENGAGE_SEND_MAX_CLAIMS lost claims: generation_failed)
    queued / delayed / stale sending ──DELETE of a stuck transmission──▶ canceled

A final state is named after the SparkPost event its change writes (``STATE_EVENT``).

A transmission ends ``Success`` when at least one message was generated (handed to the
relay, whatever the relay answered: bounces are delivery outcomes, as in SparkPost),
``Failed`` when every message failed generation (``num_generated`` 0, an Engage state:
SPEC B §1.7 lists only ``submitted``, ``Generating``, ``Success`` and ``Canceled``), and
``Canceled`` when it was deleted (scheduled, or stuck while generating).

Rows are written with COPY at accept time, so the recipient data is stored as one JSON
document per row in the normalized shape of ``recipient_lists.recipients``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class TransmissionState(models.TextChoices):
    # The mixed case is SparkPost's, as documented (SPEC B §1.7).
    SUBMITTED = "submitted"
    GENERATING = "Generating"
    SUCCESS = "Success"
    CANCELED = "Canceled"
    FAILED = "Failed"  # every message failed generation (Engage's; see the module docstring)


class TransmissionSource(models.TextChoices):
    """The way a transmission came in: the REST API or SMTP injection (SPEC A.4). An SMTP
    one's events say so (``recv_method``, ``template_id`` ``smtp_<id>``; SMTP-INJECTION.md
    §1.7, §5.6) and its recipients may carry a ``rcpt_type``."""

    API = "api", "REST API"
    SMTP = "smtp", "SMTP injection"


class Transmission(models.Model):
    # Numeric ids of about 17 digits (SPEC A.1): the identity column starts at 10**16
    # (migration 0002), so ids are unique and increasing.
    id = models.BigAutoField(primary_key=True)
    state = models.CharField(max_length=16, choices=TransmissionState.choices, default=TransmissionState.SUBMITTED)
    source = models.CharField(
        max_length=8,
        choices=TransmissionSource.choices,
        default=TransmissionSource.API,
        db_default=TransmissionSource.API,
    )
    campaign_id = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=1024, blank=True, default="")
    return_path = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    substitution_data = models.JSONField(null=True, blank=True)
    options = models.JSONField(default=dict, blank=True)
    # Inline content (normalized), {"email_rfc822": ...}, or {} for a stored template.
    content = models.JSONField(default=dict, blank=True)
    template_id = models.CharField(max_length=64, blank=True, default="")
    use_draft_template = models.BooleanField(default=False)
    template_version = models.CharField(max_length=16, blank=True, default="")
    # The stored template as it was when generation started, written with template_version
    # (transmissions.services.transmission_start_generation): {"content": ..., "options": ...},
    # or {"error": {"type": ..., "description": ...}} when it could not be loaded then. None
    # for inline content and for transmissions started before migration 0005.
    template_snapshot = models.JSONField(null=True, blank=True)
    list_id = models.CharField(max_length=64, blank=True, default="")
    tracking_domain = models.CharField(max_length=255, blank=True, default="")
    start_time = models.DateTimeField(null=True, blank=True)
    num_rcpts = models.PositiveIntegerField(default=0)
    rcpt_list_chunk_size = models.PositiveIntegerField(default=0)
    rcpt_list_total_chunks = models.PositiveIntegerField(default=0)
    num_generated = models.PositiveIntegerField(default=0)
    num_failed_gen = models.PositiveIntegerField(default=0)
    generation_start_time = models.DateTimeField(null=True, blank=True)
    generation_end_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        # campaign_id, template_id and list_id are matched exactly (the transmission list's
        # filters, a template or list in use): plain b-tree indexes. ``db_index=True`` on a
        # CharField also builds a ``varchar_pattern_ops`` index for LIKE, which nothing runs,
        # and every transmission row written paid for it (migration 0009).
        indexes = [
            models.Index(fields=["state", "start_time"], name="tx_state_start"),
            models.Index(fields=["campaign_id"], name="tx_campaign_id"),
            models.Index(fields=["template_id"], name="tx_template_id"),
            models.Index(fields=["list_id"], name="tx_list_id"),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def is_inline(self) -> bool:
        return not self.template_id


class MessageState(models.TextChoices):
    """A message's place in the send state machine (the module docstring). The states a
    relay answer or a failure ends in take their word from the event they write (SPEC B §6):
    ``delivery`` → delivered, ``bounce`` → bounced, ``delay`` → delayed,
    ``generation_failure`` → generation_failed."""

    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DELAYED = "delayed"
    GENERATION_FAILED = "generation_failed"
    CANCELED = "canceled"


#: The event (SPEC B §6 type) written with a message's move into each state; a message's
#: first relay answer (delivered, bounced, delayed) also writes its one ``injection``.
STATE_EVENT: dict[str, str] = {
    MessageState.DELIVERED: "delivery",
    MessageState.BOUNCED: "bounce",
    MessageState.DELAYED: "delay",
    MessageState.GENERATION_FAILED: "generation_failure",
    MessageState.CANCELED: "bounce",
}
#: Messages handed to the relay, whatever it answered: SparkPost's ``num_generated``.
GENERATED_STATES = (MessageState.DELIVERED, MessageState.BOUNCED, MessageState.DELAYED)
#: Messages still to be claimed or being sent: their transmission is not done.
PENDING_STATES = (MessageState.QUEUED, MessageState.SENDING)


class Message(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Indexed by msg_tx_chunk_state (leading column); message_id by its unique constraint only
    # (no varchar_pattern_ops twin): every index here is written three times per message
    # (COPY at accept, the claim, the ``delivered`` UPDATE).
    transmission = models.ForeignKey(Transmission, on_delete=models.CASCADE, related_name="messages", db_index=False)
    chunk = models.PositiveIntegerField()
    message_id = models.CharField(max_length=20)
    email = models.TextField()
    recipient = models.JSONField()
    state = models.CharField(max_length=24, choices=MessageState.choices, db_default=MessageState.QUEUED)
    attempts = models.PositiveSmallIntegerField(db_default=0)
    # Claims that went stale (their worker died) without finishing; capped by ENGAGE_SEND_MAX_CLAIMS.
    claims_lost = models.PositiveSmallIntegerField(db_default=0)
    claimed_by = models.CharField(max_length=64, blank=True, db_default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The relay's last answer, or why the message could not be generated (its event's reason).
    last_error = models.TextField(blank=True, db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["transmission", "chunk", "state"], name="msg_tx_chunk_state"),
            # Only the messages still to send: "is this transmission done?" and stale claims.
            models.Index(
                fields=["transmission", "claimed_at"],
                name="msg_pending",
                condition=models.Q(state__in=[MessageState.QUEUED, MessageState.SENDING]),
            ),
            # Messages whose worker died while it held them: claimed one at a time (sending).
            models.Index(
                fields=["transmission", "chunk"],
                name="msg_claims_lost",
                condition=models.Q(claims_lost__gt=0, state__in=[MessageState.QUEUED, MessageState.SENDING]),
            ),
            # Delayed messages whose retry is overdue (the recovery beat).
            models.Index(fields=["finished_at"], name="msg_delayed", condition=models.Q(state="delayed")),
        ]
        constraints = [models.UniqueConstraint(fields=["message_id"], name="msg_message_id_unique")]

    def __str__(self) -> str:
        return self.message_id
