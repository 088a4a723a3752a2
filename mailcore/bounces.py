"""PURE: SparkPost's bounce classification codes (SPEC B §6.2 ``bounce_class``; SparkPost's
support article "Bounce Classification Codes"): what each class is called and the category it
belongs to, for pages that show a bounce or a delay to a person.

The categories are the ones the rollups count bounces by (``analytics.rollups``:
``hard_bounce`` ... ``undetermined_bounce``, SPEC B §7.3);
``tests/analytics/test_bounce_classes.py`` fails when the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BOUNCE_CLASSES", "BY_CODE", "CATEGORIES", "BounceClass", "bounce_class_text"]

#: The categories, in the order of SparkPost's metrics (``count_hard_bounce`` ...).
CATEGORIES: tuple[str, ...] = ("hard", "soft", "block", "admin", "undetermined")


@dataclass(frozen=True, slots=True)
class BounceClass:
    """One class: ``code`` (the ``bounce_class`` string of an event), ``name``, ``category``
    (one of ``CATEGORIES``) and ``description``."""

    code: str
    name: str
    category: str
    description: str


BOUNCE_CLASSES: tuple[BounceClass, ...] = (
    BounceClass("1", "Undetermined", "undetermined", "The response text could not be identified."),
    BounceClass("10", "Invalid Recipient", "hard", "The recipient is invalid."),
    BounceClass("20", "Soft Bounce", "soft", "The message soft bounced."),
    BounceClass("21", "DNS Failure", "soft", "The message bounced due to a DNS failure."),
    BounceClass("22", "Mailbox Full", "soft", "The remote mailbox is over quota."),
    BounceClass("23", "Too Large", "soft", "The message was too large for the recipient."),
    BounceClass("24", "Timeout", "soft", "The message timed out."),
    BounceClass("25", "Admin Failure", "admin", "The message was failed by the sender's configured policies."),
    BounceClass("30", "Generic Bounce: No RCPT", "hard", "No recipient could be determined for the message."),
    BounceClass("40", "Generic Bounce", "soft", "The message failed for unspecified reasons."),
    BounceClass("50", "Mail Block", "block", "The receiver blocked the message."),
    BounceClass("51", "Spam Block", "block", "The receiver blocked the message as coming from a known spam source."),
    BounceClass("52", "Spam Content", "block", "The receiver blocked the message as spam."),
    BounceClass("53", "Prohibited Attachment", "block", "The receiver blocked the message for an attachment."),
    BounceClass("54", "Relaying Denied", "block", "The receiver blocked the message: relaying is not allowed."),
    BounceClass("60", "Auto-Reply", "soft", "The answer is an auto-reply (vacation) message."),
    BounceClass("70", "Transient Failure", "soft", "Delivery is delayed for now."),
    BounceClass("80", "Subscribe", "admin", "The answer is a subscribe request."),
    BounceClass("90", "Unsubscribe", "hard", "The answer is an unsubscribe request."),
    BounceClass("100", "Challenge-Response", "soft", "The answer is a challenge-response probe."),
)
#: ``bounce_class`` code -> its class.
BY_CODE: dict[str, BounceClass] = {bounce.code: bounce for bounce in BOUNCE_CLASSES}


def bounce_class_text(code: str) -> str:
    """``code`` in words for a person: ``"10"`` → ``"10 Invalid Recipient (hard)"``; an
    unknown code is returned as it is, "" as ""."""
    bounce = BY_CODE.get(code)
    return f"{code} {bounce.name} ({bounce.category})" if bounce else code
