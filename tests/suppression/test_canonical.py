"""One mailbox, many spellings (issue 14): the suppression list stores and matches an address
under ``mailcore.addresses.mailbox_key`` (lower-cased, NFC local part, A-label domain)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mailcore.addresses import mailbox_key
from suppression.models import SuppressionEntry
from suppression.selectors import suppressed_among
from suppression.services import suppression_add, suppression_from_events

URL = "/api/v1/suppression-list"
IDN_U = "idn@bücher.example"
IDN_A = "idn@xn--bcher-kva.example"
NFC = unicodedata.normalize("NFC", "jöe@example.com")
NFD = unicodedata.normalize("NFD", NFC)
# (stored spelling, looked-up spelling, canonical)
SPELLINGS = [
    (IDN_U, IDN_A, IDN_A),
    (IDN_A, IDN_U, IDN_A),
    ("IDN@XN--BCHER-KVA.EXAMPLE", "idn@Bücher.example", IDN_A),
    (NFD, NFC, NFC),
    (NFC, NFD, NFC),
    ("JÖE@EXAMPLE.COM", NFD, NFC),
    ("Ann@Example.COM", " ann@example.com ", "ann@example.com"),
    ('"Bob"@Example.com', "bob@example.com", "bob@example.com"),  # RFC 5322 §3.2.4: a quoted-string means its content
    ("bob@example.com", '"b\\ob"@example.com', "bob@example.com"),
    ('"A B"@example.com', '"a\\ b"@example.com', '"a b"@example.com'),
]


@pytest.mark.parametrize(("one", "other", "canonical"), SPELLINGS)
def test_mailbox_key_gives_both_spellings_the_canonical_one(one, other, canonical):
    assert mailbox_key(one) == mailbox_key(other) == canonical


def test_mailbox_key_never_raises_on_a_domain_that_is_not_an_idn():
    assert mailbox_key("a@bad_ü..example") == "a@bad_ü..example"
    assert mailbox_key("no-at-sign") == "no-at-sign"


@pytest.mark.django_db
@pytest.mark.parametrize(("one", "other", "canonical"), SPELLINGS)
def test_an_entry_stored_in_one_spelling_suppresses_the_other(api, one, other, canonical):
    response = api.put(URL, {"recipients": [{"recipient": one, "type": "non_transactional"}]}, format="json")
    assert response.status_code == 200, response.content
    assert SuppressionEntry.objects.get().recipient == canonical
    assert suppressed_among(addresses=[other], type="non_transactional") == {other}
    for path in (other.strip(), quote(other.strip())):
        answer = api.get(f"{URL}/{path}")
        assert answer.status_code == 200, answer.content
        assert [e["recipient"] for e in answer.json()["results"]] == [canonical]


@pytest.mark.django_db
def test_two_spellings_in_one_bulk_put_are_one_entry_the_last_wins(api):
    entries = [
        {"recipient": IDN_U, "type": "transactional", "description": "first"},
        {"recipient": IDN_A, "type": "transactional", "description": "last"},
    ]
    assert api.put(URL, {"recipients": entries}, format="json").status_code == 200
    assert list(SuppressionEntry.objects.values_list("recipient", "description")) == [(IDN_A, "last")]


@pytest.mark.django_db
def test_single_put_and_delete_name_the_entry_in_any_spelling(api):
    assert api.put(f"{URL}/{quote(NFD)}", {"type": "transactional"}, format="json").status_code == 200
    assert SuppressionEntry.objects.get().recipient == NFC
    assert api.delete(f"{URL}/{quote(NFC.upper())}").status_code == 204
    assert not SuppressionEntry.objects.exists()


@pytest.mark.django_db
def test_automatic_entries_and_add_store_the_canonical_spelling():
    suppression_add(recipient=NFD, types=["non_transactional"], source="List Unsubscribe", description="")
    suppression_from_events(
        events=[{"type": "bounce", "rcpt_to": "IDN@Bücher.example", "bounce_class": "10", "error_code": "550"}]
    )
    assert sorted(SuppressionEntry.objects.values_list("recipient", "type")) == [
        (IDN_A, "non_transactional"),
        (IDN_A, "transactional"),
        (NFC, "non_transactional"),
    ]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_the_migration_rekeys_stored_entries_and_merges_duplicates_keeping_the_latest(transactional_db):
    from datetime import UTC, datetime

    apps = _migrate([("suppression", "0001_initial")])
    try:
        Entry = apps.get_model("suppression", "SuppressionEntry")

        def old(recipient, kind, source, day):
            entry = Entry.objects.create(recipient=recipient, type=kind, source=source, description=recipient)
            Entry.objects.filter(pk=entry.pk).update(updated=datetime(2026, 1, day, tzinfo=UTC))

        old(IDN_U, "transactional", "Manually Added", 2)  # the latest of its mailbox: kept
        old(IDN_A, "transactional", "Manually Added", 1)
        old(NFD, "non_transactional", "Compliance", 1)  # Compliance: kept though older
        old(NFC, "non_transactional", "Manually Added", 3)
        old("plain@example.com", "transactional", "Bounce Rule", 1)
        _migrate([("suppression", "0002_mailbox_key")])
        rows = sorted(SuppressionEntry.objects.values_list("recipient", "type", "source", "description"))
        assert rows == [
            (IDN_A, "transactional", "Manually Added", IDN_U),
            (NFC, "non_transactional", "Compliance", NFD),
            ("plain@example.com", "transactional", "Bounce Rule", "plain@example.com"),
        ]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_the_second_migration_merges_entries_stored_under_a_quoted_local_part(transactional_db):
    from datetime import UTC, datetime

    apps = _migrate([("suppression", "0002_mailbox_key")])
    try:
        Entry = apps.get_model("suppression", "SuppressionEntry")
        for recipient, day in (('"bob"@example.com', 2), ("bob@example.com", 1), ('"a b"@example.com', 1)):
            entry = Entry.objects.create(recipient=recipient, type="non_transactional", source="Manually Added",
                                         description=recipient)  # fmt: skip
            Entry.objects.filter(pk=entry.pk).update(updated=datetime(2026, 1, day, tzinfo=UTC))
        _migrate([("suppression", "0003_unquoted_local_parts")])
        rows = sorted(SuppressionEntry.objects.values_list("recipient", "description"))
        assert rows == [('"a b"@example.com', '"a b"@example.com'), ("bob@example.com", '"bob"@example.com')]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
