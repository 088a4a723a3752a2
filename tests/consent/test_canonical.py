"""One mailbox, many spellings (issue 14): the tracking consent register stores and matches
an address under ``mailcore.addresses.mailbox_key``."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from consent.models import TrackingConsent
from consent.selectors import consent_among, consent_denied_among

URL = "/api/v1/tracking-consent"
IDN_U = "idn@bücher.example"
IDN_A = "idn@xn--bcher-kva.example"
NFC = unicodedata.normalize("NFC", "jöe@example.com")
NFD = unicodedata.normalize("NFD", NFC)
SPELLINGS = [
    (IDN_U, IDN_A, IDN_A),
    (IDN_A, IDN_U, IDN_A),
    (NFD, NFC, NFC),
    (NFC, NFD, NFC),
    ("JÖE@EXAMPLE.COM", NFD, NFC),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("one", "other", "canonical"), SPELLINGS)
def test_consent_recorded_in_one_spelling_applies_to_the_other(api, one, other, canonical):
    response = api.put(URL, {"recipients": [{"recipient": one, "consent": "denied"}]}, format="json")
    assert response.status_code == 200, response.content
    assert TrackingConsent.objects.get().recipient == canonical
    assert consent_among(addresses=[other]) == {canonical: "denied"}
    assert consent_denied_among(addresses=[other]) == {canonical}
    body = api.get(f"{URL}/{quote(other)}").json()["results"]
    assert (body["recipient"], body["consent"]) == (canonical, "denied")


@pytest.mark.django_db
def test_single_put_in_another_spelling_joins_the_same_history(api):
    assert api.put(f"{URL}/{quote(IDN_U)}", {"consent": "denied"}, format="json").status_code == 200
    assert api.put(f"{URL}/{IDN_A.upper()}", {"consent": "granted"}, format="json").status_code == 200
    body = api.get(f"{URL}/{IDN_A}").json()["results"]
    assert body["consent"] == "granted" and [r["consent"] for r in body["history"]] == ["granted", "denied"]
    assert api.delete(f"{URL}/{quote(IDN_U)}").status_code == 204


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_the_migration_rekeys_the_register_into_one_history(transactional_db):
    from datetime import UTC, datetime

    apps = _migrate([("consent", "0001_register")])
    try:
        Record = apps.get_model("consent", "TrackingConsent")
        Record.objects.create(recipient=NFD, consent="granted", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
        Record.objects.create(recipient=NFC, consent="denied", recorded_at=datetime(2026, 1, 2, tzinfo=UTC))
        Record.objects.create(recipient=IDN_U, consent="denied", recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
        _migrate([("consent", "0002_mailbox_key")])
        assert sorted(TrackingConsent.objects.values_list("recipient", flat=True)) == sorted([NFC, NFC, IDN_A])
        assert consent_among(addresses=[NFD, IDN_U]) == {NFC: "denied", IDN_A: "denied"}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
