"""Withdrawn tracking consent applies to mail already sent (SPEC A.5): the old link still
redirects and the pixel still answers, but the lander never stores their events."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from analytics.landing import events_land, outbox_land
from consent.services import ConsentWrite, consent_record
from tests.tracking.helpers import MESSAGE
from tracking.models import Event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_stream")]


def _other_tokens():
    from tracking.signing import tracking_signer

    return tracking_signer().for_message(issued_at=int(time.time()), **{**MESSAGE, "rcpt_to": "al@example.com"})


def test_after_withdrawal_the_old_link_redirects_and_its_events_are_not_stored(client, tokens):
    other = _other_tokens()
    consent_record(writes=[ConsentWrite("Jo@Example.com".lower(), "denied", "prefs", "unticked")])
    click = client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer')}")
    pixel = client.get(f"/q/{tokens.open('open')}")
    client.get(f"/f/{other.click('https://example.com/offer', 'Offer')}")
    unsubscribe = client.post(f"/u/{tokens.open('unsubscribe')}", {"List-Unsubscribe": "One-Click"})
    assert click.status_code == 302 and click["Location"] == "https://example.com/offer"
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"
    assert unsubscribe.status_code == 200

    events_land(consumer="test")

    stored = sorted(Event.objects.values_list("rcpt_to", "type"))
    assert stored == [("al@example.com", "click"), ("jo@example.com", "list_unsubscribe")]


def test_a_hit_made_while_denied_stays_dropped_when_consent_is_granted_before_it_lands(client, tokens):
    # The attacker's case: landing paused, a click made while denied, consent granted, landing resumes.
    consent_record(writes=[ConsentWrite("jo@example.com", "denied")])
    client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer')}")
    consent_record(writes=[ConsentWrite("jo@example.com", "granted")])
    client.get(f"/q/{tokens.open('open')}")
    events_land(consumer="test")
    assert list(Event.objects.values_list("type", flat=True)) == ["open"]


def test_a_hit_made_before_the_withdrawal_is_kept_when_it_lands_after(client, tokens):
    client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer')}")
    consent_record(writes=[ConsentWrite("jo@example.com", "denied")])
    client.get(f"/q/{tokens.open('open')}")
    events_land(consumer="test")
    assert list(Event.objects.values_list("type", flat=True)) == ["click"]


def test_a_consent_granted_again_lets_later_hits_land(client, tokens):
    consent_record(writes=[ConsentWrite("jo@example.com", "denied"), ConsentWrite("jo@example.com", "granted")])
    client.get(f"/q/{tokens.open('open')}")
    events_land(consumer="test")
    assert list(Event.objects.values_list("type", flat=True)) == ["open"]


def test_hits_buffered_in_the_outbox_are_dropped_too():
    from django.db import connection

    from tracking.events import event_id_new
    from tracking.outbox import outbox_json

    consent_record(writes=[ConsentWrite("jo@example.com", "denied")])
    made = datetime.now(UTC).isoformat()  # after the withdrawal
    events = [
        {"type": kind, "event_id": event_id_new(), "timestamp": made, "rcpt_to": rcpt}
        for kind, rcpt in [("click", "jo@example.com"), ("delivery", "jo@example.com"), ("open", "al@example.com")]
    ]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO tracking_event_outbox (payload) VALUES (%s::jsonb)", [outbox_json(events)])
    assert outbox_land() == 2
    assert sorted(Event.objects.values_list("rcpt_to", "type")) == [
        ("al@example.com", "open"),
        ("jo@example.com", "delivery"),
    ]


def test_consent_data_costs_the_click_and_the_pixel_no_query(client, tokens, django_assert_num_queries):
    # Issue 14: withdrawal is checked where hits land, so the redirect and the pixel read no
    # consent (nor anything else) from PostgreSQL however large the register is.
    consent_record(writes=[ConsentWrite(f"r{n}@example.com", "denied", "prefs", "") for n in range(2000)])
    consent_record(writes=[ConsentWrite("jo@example.com", "denied", "prefs", "unticked")])
    with django_assert_num_queries(0):
        assert client.get(f"/f/{tokens.click('https://example.com/offer', 'Offer')}").status_code == 302
        assert client.get(f"/q/{tokens.open('open')}").status_code == 200
