"""Tracking consent: whether one recipient's message is tracked (SPEC A.5, "Tracking consent").

Pure: every input is an argument. The rule's one owner; ``transmissions.generation`` applies
it per recipient, ``consent.models`` names its values.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime

GRANTED = "granted"
DENIED = "denied"
#: The values a consent may take, everywhere (register, recipient object, setting).
VALUES: tuple[str, ...] = (GRANTED, DENIED)


def tracking_consented(*, recipient: str | None, register: str | None, default: str) -> bool:
    """True when the message may be tracked (open pixel, rewritten links, metadata in URLs).

    Precedence: a ``register`` (the address's current state in the consent register) of
    ``"denied"`` wins over everything: it is the recipient's own withdrawal, which the lander
    also applies to every hit (a sender's per-transmission ``granted`` cannot track someone
    who said no, only to have every event dropped). Otherwise, first given wins:
    ``recipient`` (the recipient object's ``tracking_consent`` for this transmission) >
    ``register`` > ``default`` (``ENGAGE_TRACKING_CONSENT_DEFAULT``). Each is ``"granted"``,
    ``"denied"`` or None (not given); anything else counts as not given.
    """
    if register == DENIED:
        return False
    for value in (recipient, register, default):
        if value in VALUES:
            return value == GRANTED
    return True


def consent_at(timeline: Sequence[tuple[datetime, str]], at: datetime) -> str | None:
    """The consent in force at ``at`` for an address whose register records are ``timeline``
    (``(recorded_at, consent)``, oldest first, aware datetimes): the last recorded at or
    before ``at``, or None when there was none yet (the default applies). A hit is judged by
    the state when it was made, not when it landed (SPEC A.5: withdrawal applies to mail
    already sent, from the moment it is recorded)."""
    index = bisect_right(timeline, at, key=lambda record: record[0])
    return timeline[index - 1][1] if index else None
