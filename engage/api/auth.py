"""API-key authentication and grant checks (SPEC A.1, B §10).

A key is sent raw in ``Authorization`` (SparkPost's form) or as ``Basic base64("<key>:")``.
Only its SHA-256 is stored. Every API view declares ``grants``: for each HTTP method, the
grants any one of which lets a key through. HEAD needs the grants of GET; OPTIONS needs a
valid key and no grant (it tells only which methods exist, RFC 9110 §9.3.7).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING, cast

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from api_keys.selectors import api_key_get_active
from engage import errors
from engage.api.handler import WWW_AUTHENTICATE

if TYPE_CHECKING:  # rest_framework.views loads this module (DEFAULT_AUTHENTICATION_CLASSES)
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from api_keys.models import ApiKey


def key_from_header(header: str) -> str | None:
    """The raw key carried by an ``Authorization`` header value, or None if there is none."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "basic" and rest:
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    if scheme.lower() == "bearer" and rest:
        return rest.strip()
    return header


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKey, ApiKey]:
        raw = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        if raw is None:
            raise errors.Unauthorized("Provide your API key in the Authorization header")
        key = api_key_get_active(raw_key=raw)
        if key is None:
            raise errors.Unauthorized("The API key is unknown or has been revoked")
        return (key, key)

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class HasGrant(BasePermission):
    """Lets a request through when its key holds one of the grants the view names for the method."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        declared = getattr(view, "grants", None)
        method = "GET" if request.method == "HEAD" else request.method
        assert method is not None  # every request has one
        if method == "OPTIONS":
            return True  # the key is valid (authentication ran first); Allow is no secret
        if not hasattr(view, method.lower()):
            return True  # the view answers 405 for a method it does not implement
        if not declared or method not in declared:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no grant for {method}")
        needed = declared[method]
        if not cast("ApiKey", request.auth).has_any_grant(needed):  # set by ApiKeyAuthentication
            raise errors.PermissionDenied(f"This API key needs one of these grants: {', '.join(needed)}")
        return True


_throttle_log = logging.getLogger("engage.api.throttle")


class ApiKeyRateThrottle(SimpleRateThrottle):
    """``ENGAGE_API_RATE`` per API key, counted in the Redis cache. While Redis does not
    answer, requests are let through (logged): the limit protects the service, and a Redis
    outage must not turn every API call, reads of PostgreSQL included, into an error."""

    scope = "api_key"

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            _throttle_log.warning("API rate limit not checked (Redis: %s): request let through", exc)
            return True

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
