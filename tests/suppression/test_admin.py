"""The suppression list in the admin: search, add (``Compliance`` included), remove (SPEC A.5)."""

from __future__ import annotations

import pytest

from suppression.models import SuppressionEntry
from suppression.services import suppression_add
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

ADMIN = "/admin/suppression/suppressionentry/"


def test_changelist_searches_addresses_in_any_case_and_filters_by_source(admin_client):
    suppression_add(recipient="ann@example.com", types=["transactional"], source="Bounce Rule", description="550")
    suppression_add(recipient="bob@example.com", types=["transactional"], source="List Unsubscribe", description="")
    searched = admin_client.get(f"{ADMIN}?q=ANN@EXAMPLE.COM")
    assert searched.status_code == 200
    assert b"ann@example.com" in searched.content and b"bob@example.com" not in searched.content
    filtered = admin_client.get(f"{ADMIN}?source__exact=List+Unsubscribe")
    assert b"bob@example.com" in filtered.content and b"ann@example.com" not in filtered.content


def test_staff_add_a_compliance_entry_the_api_cannot_touch(admin_client, api):
    form = {
        "recipient": " Carl@Example.com ",
        "type": "transactional",
        "source": "Compliance",
        "description": "by letter",
    }
    response = admin_client.post(f"{ADMIN}add/", form)
    assert response.status_code == 302, response.content[:2000]
    entry = SuppressionEntry.objects.get()
    assert (entry.recipient, entry.source) == ("carl@example.com", "Compliance")
    assert_error(api.delete("/api/v1/suppression-list/carl@example.com"), 403, "1100")


def test_the_admin_refuses_an_invalid_address_and_a_duplicate(admin_client):
    bad = admin_client.post(f"{ADMIN}add/", {"recipient": "nope", "type": "transactional", "source": "Manually Added"})
    assert bad.status_code == 200 and b"not a valid email address" in bad.content
    suppression_add(recipient="d@example.com", types=["transactional"], source="Manually Added", description="")
    again = admin_client.post(
        f"{ADMIN}add/", {"recipient": "D@example.com", "type": "transactional", "source": "Manually Added"}
    )
    assert again.status_code == 200 and SuppressionEntry.objects.count() == 1


def test_staff_remove_an_entry(admin_client):
    suppression_add(recipient="e@example.com", types=["transactional"], source="Compliance", description="")
    entry = SuppressionEntry.objects.get()
    response = admin_client.post(f"{ADMIN}{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not SuppressionEntry.objects.exists()
