"""Tracking keys, the process-wide token signer and the tracking base URL, from settings.

The pure codec (``mailcore.tokens``) takes its keys as arguments; this module is the one
place that turns ``ENGAGE_TRACKING_KEYS`` / ``ENGAGE_TRACKING_BASE_URL`` into those
arguments, so the views and the transmissions pipeline sign and verify with the same keys.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from engage.keys import TRACKING_SECRET_FLOOR
from mailcore.domains import tracking_base_url_from
from mailcore.tokens import TokenSigner

_signer_cache: tuple[tuple[str, ...], TokenSigner] | None = None


def tracking_keys() -> list[tuple[int, bytes]]:
    """The configured ``(key_id, secret)`` pairs, NEWEST FIRST (the signing key first).

    ``ENGAGE_TRACKING_KEYS`` lists ``kid:secret`` entries oldest first: the LAST one signs
    and all of them verify. ``TokenSigner`` wants the signing key first, so the order is
    reversed here. A malformed entry (no colon, a key id outside 0-255, a secret shorter
    than 16 bytes, a repeated key id) raises ``ImproperlyConfigured``: a typo must not
    silently turn every tracked link into a 404. That is the shape only: whether a secret is
    strong (long enough, no placeholder, not in Engage's own files) is
    ``engage.keys.tracking_secret_problem``, which the start-up check applies to every entry
    (``engage/checks.py``, ``engage.E002``) before any process signs or verifies.
    """
    entries = list(settings.ENGAGE_TRACKING_KEYS)
    if not entries:
        raise ImproperlyConfigured("ENGAGE_TRACKING_KEYS is empty: at least one kid:secret is required")
    keys: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    for position, entry in enumerate(entries, start=1):
        kid_text, sep, secret = str(entry).partition(":")
        if not sep:
            raise ImproperlyConfigured(f"ENGAGE_TRACKING_KEYS entry {position} is not kid:secret")
        try:
            kid = int(kid_text.strip())
        except ValueError:
            raise ImproperlyConfigured(f"ENGAGE_TRACKING_KEYS entry {position}: key id {kid_text!r} is not an integer")
        if not 0 <= kid <= 255:
            raise ImproperlyConfigured(f"ENGAGE_TRACKING_KEYS entry {position}: key id {kid} is not in 0-255")
        if kid in seen:
            raise ImproperlyConfigured(f"ENGAGE_TRACKING_KEYS: key id {kid} is configured twice")
        raw = secret.encode("utf-8")
        if len(raw) < TRACKING_SECRET_FLOOR:
            raise ImproperlyConfigured(f"ENGAGE_TRACKING_KEYS: key {kid} is shorter than {TRACKING_SECRET_FLOOR} bytes")
        seen.add(kid)
        keys.append((kid, raw))
    keys.reverse()
    return keys


def tracking_signer() -> TokenSigner:
    """The process-wide ``TokenSigner`` for the configured keys.

    Built once and reused (it pre-computes the HMAC keys); rebuilt when the setting changes,
    which only happens in tests (``override_settings``).
    """
    global _signer_cache
    marker = tuple(settings.ENGAGE_TRACKING_KEYS)
    cached = _signer_cache
    if cached is not None and cached[0] == marker:
        return cached[1]
    signer = TokenSigner(tracking_keys())
    _signer_cache = (marker, signer)
    return signer


def tracking_base_url(tracking_domain: str | None = None) -> str:
    """The ``scheme://host[:port]`` tracked URLs start with, without a trailing slash.

    ``ENGAGE_TRACKING_BASE_URL`` gives the scheme and default host; a per-transmission
    ``tracking_domain`` (``host[:port]``) replaces the host and keeps the scheme. A
    ``tracking_domain`` written with a scheme (``https://t.example.com``) gives its own. The
    rule is ``mailcore.domains.tracking_domain_normalize``; a domain it refuses (one stored
    before the API checked it) raises ``ValueError``. Call once per transmission.
    """
    return tracking_base_url_from(settings.ENGAGE_TRACKING_BASE_URL, tracking_domain or "")
