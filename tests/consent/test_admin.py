"""The tracking consent register in the admin: search, history, add (issue 14 Deliver 5)."""

from __future__ import annotations

import pytest

from consent.models import TrackingConsent
from consent.services import ConsentWrite, consent_record

pytestmark = pytest.mark.django_db

ADMIN = "/admin/consent/trackingconsent/"


def test_search_in_any_case_shows_an_address_history(admin_client):
    consent_record(
        writes=[ConsentWrite("ann@example.com", "granted", "signup"), ConsentWrite("bob@example.com", "denied")]
    )
    consent_record(writes=[ConsentWrite("ann@example.com", "denied", "prefs")])
    page = admin_client.get(f"{ADMIN}?q=ANN@EXAMPLE.COM")
    assert page.status_code == 200
    assert page.content.count(b"ann@example.com") >= 2 and b"bob@example.com" not in page.content
    assert b"signup" in page.content and b"prefs" in page.content


def test_staff_add_a_record_and_a_recorded_one_is_not_edited(admin_client):
    response = admin_client.post(f"{ADMIN}add/", {"recipient": " Cy@Example.com ", "consent": "denied", "source": "phone",
                                                  "evidence": "asked on a call"})  # fmt: skip
    assert response.status_code == 302
    record = TrackingConsent.objects.get()
    assert (record.recipient, record.consent) == ("cy@example.com", "denied")
    admin_client.post(f"{ADMIN}{record.pk}/change/", {"recipient": "cy@example.com", "consent": "granted"})
    record.refresh_from_db()
    assert record.consent == "denied"
    assert admin_client.post(f"{ADMIN}add/", {"recipient": "nope", "consent": "denied"}).status_code == 200
    assert TrackingConsent.objects.count() == 1
