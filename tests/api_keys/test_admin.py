"""API keys are created in the admin, the raw key shown once and only its hash stored
(issue 15, Deliver 5)."""

from __future__ import annotations

import pytest

from api_keys.models import ApiKey, hash_key

pytestmark = pytest.mark.django_db

ADD = "/admin/api_keys/apikey/add/"


def test_the_add_page_asks_for_a_label_and_grants(admin_client):
    page = admin_client.get(ADD)
    assert page.status_code == 200
    assert b'name="label"' in page.content and b'value="templates/view"' in page.content


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(admin_client, client):
    response = admin_client.post(ADD, {"label": "ci", "grants": ["templates/view", "transmissions/modify"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw.encode() in response.content and b"shown only once" in response.content
    key = ApiKey.objects.get(label="ci")
    assert key.key_hash == hash_key(raw) and key.prefix == raw[:4]
    assert key.grants == ["templates/view", "transmissions/modify"]
    assert all(raw not in str(value) for value in ApiKey.objects.values_list().get())
    assert raw.encode() not in admin_client.get(f"/admin/api_keys/apikey/{key.pk}/change/").content
    assert raw.encode() not in admin_client.get("/admin/api_keys/apikey/").content
    assert client.get("/api/v1/templates", HTTP_AUTHORIZATION=raw).status_code == 200


def test_a_key_needs_a_label_and_a_known_grant(admin_client):
    assert admin_client.post(ADD, {"label": "", "grants": ["templates/view"]}).status_code == 200
    assert admin_client.post(ADD, {"label": "x", "grants": ["root/all"]}).status_code == 200
    assert admin_client.post(ADD, {"label": "x"}).status_code == 200
    assert not ApiKey.objects.exists()


def test_only_staff_can_create_keys(client):
    assert client.post(ADD, {"label": "x", "grants": ["templates/view"]}).status_code == 302
    assert not ApiKey.objects.exists()


def change(key: ApiKey) -> str:
    return f"/admin/api_keys/apikey/{key.pk}/change/"


def a_key() -> ApiKey:
    return ApiKey.objects.create(label="ci", prefix="abcd", key_hash="0" * 64, grants=["templates/view"])


def test_the_change_page_offers_the_known_grants_as_checkboxes(admin_client):
    page = admin_client.get(change(a_key())).content.decode()
    assert 'type="checkbox" name="grants" value="templates/view"' in page and "checked" in page
    assert 'value="suppression_lists/manage"' in page


def test_the_change_page_refuses_an_unknown_grant_and_keeps_the_stored_ones(admin_client):
    key = a_key()
    response = admin_client.post(change(key), {"label": "ci", "grants": ["superpower"]})
    assert response.status_code == 200
    assert "Select a valid choice. superpower is not one of the available choices." in response.content.decode()
    key.refresh_from_db()
    assert key.grants == ["templates/view"]


def test_the_change_page_stores_the_ticked_grants(admin_client):
    key = a_key()
    response = admin_client.post(change(key), {"label": "ci", "grants": ["transmissions/modify", "metrics/view"]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.grants == ["metrics/view", "transmissions/modify"]
