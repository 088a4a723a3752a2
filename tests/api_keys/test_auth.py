"""API keys: raw and Basic authentication, 401 for missing/unknown/revoked keys, 403 without the grant."""

from __future__ import annotations

import base64

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from api_keys.models import ApiKey, hash_key
from api_keys.services import api_key_create, api_key_revoke
from engage.api.views import ApiView
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_raw_key_in_authorization_header_is_accepted(make_key):
    response = client_with(make_key("templates/view")).get("/api/v1/templates")
    assert response.status_code == 200
    assert "results" in response.json()


def test_basic_auth_with_key_as_username_is_accepted(make_key):
    raw = make_key("templates/view")
    header = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    assert client_with(header).get("/api/v1/templates").status_code == 200


def test_missing_key_is_401_1303():
    error = assert_error(client_with(None).get("/api/v1/templates"), 401, "1303")
    assert error["message"] == "Unauthorized."


def test_unknown_key_is_401_1303():
    assert_error(client_with("0" * 40).get("/api/v1/templates"), 401, "1303")


def test_malformed_basic_header_is_401():
    assert_error(client_with("Basic !!!notbase64").get("/api/v1/templates"), 401, "1303")


def test_revoked_key_is_401(db):
    key, raw = api_key_create(label="x", grants=["templates/view"])
    api_key_revoke(key=key)
    assert_error(client_with(raw).get("/api/v1/templates"), 401, "1303")


def test_key_without_the_grant_is_403_1100(make_key):
    error = assert_error(client_with(make_key("metrics/view")).get("/api/v1/templates"), 403, "1100")
    assert "templates/view" in error["description"]


def test_view_grant_cannot_modify(make_key):
    response = client_with(make_key("templates/view")).post("/api/v1/templates", {"name": "x"}, format="json")
    assert_error(response, 403, "1100")


def test_only_a_hash_of_the_key_is_stored(db):
    key, raw = api_key_create(label="x", grants=["templates/view"])
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hash_key(raw)
    assert raw not in {stored.key_hash, stored.prefix, stored.label}
    assert stored.prefix == raw[:4]


def _api_views(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None and issubclass(view_class, ApiView):
                yield prefix + str(pattern.pattern), view_class


def test_every_api_view_declares_a_grant_for_every_method_it_implements():
    views = list(_api_views())
    assert views, "no API views found"
    for route, view_class in views:
        for method in ("get", "post", "put", "delete"):
            if hasattr(view_class, method):
                grants = view_class.grants.get(method.upper())
                assert grants, f"{route} {view_class.__name__} has no grant for {method.upper()}"
