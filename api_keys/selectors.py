from __future__ import annotations

from api_keys.models import ApiKey, hash_key


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    """The unrevoked key whose hash matches, or None."""
    return ApiKey.objects.filter(key_hash=hash_key(raw_key), revoked_at__isnull=True).first()


def api_key_grants_if_active(*, key_id: int) -> list[str] | None:
    """The grants of the unrevoked key ``key_id``, or None when it is revoked or gone (one
    primary-key read, for a session that re-checks the key it authenticated with)."""
    return ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).values_list("grants", flat=True).first()
