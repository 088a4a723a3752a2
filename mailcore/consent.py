"""Tracking consent: whether one recipient's message is tracked (SPEC A.5, "Tracking consent").

Pure: every input is an argument. The rule's one owner; ``transmissions.generation`` applies
it per recipient, ``consent.models`` names its values.
"""

from __future__ import annotations

GRANTED = "granted"
DENIED = "denied"
#: The values a consent may take, everywhere (register, recipient object, setting).
VALUES: tuple[str, ...] = (GRANTED, DENIED)


def tracking_consented(*, recipient: str | None, register: str | None, default: str) -> bool:
    """True when the message may be tracked (open pixel, rewritten links, metadata in URLs).

    Precedence, first given wins: ``recipient`` (the recipient object's ``tracking_consent``
    for this transmission) > ``register`` (the address's current state in the consent
    register) > ``default`` (``ENGAGE_TRACKING_CONSENT_DEFAULT``). Each is ``"granted"``,
    ``"denied"`` or None (not given); anything else counts as not given.
    """
    for value in (recipient, register, default):
        if value in VALUES:
            return value == GRANTED
    return True
