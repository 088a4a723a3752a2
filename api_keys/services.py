from __future__ import annotations

import secrets

from django.utils import timezone

from api_keys.models import ApiKey, hash_key


def api_key_create(*, label: str, grants: list[str]) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored and shown once."""
    raw = secrets.token_hex(20)
    key = ApiKey.objects.create(label=label, prefix=raw[:4], key_hash=hash_key(raw), grants=grants)
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
