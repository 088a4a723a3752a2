from __future__ import annotations

from api_keys.models import ApiKey, hash_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The unrevoked key whose hash matches, or None."""
    return ApiKey.objects.filter(key_hash=hash_key(raw_key), revoked_at__isnull=True).first()
