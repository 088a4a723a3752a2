from __future__ import annotations

from django.db import connection, transaction

from analytics.ingest import event_row, events_insert
from tests.analytics import data
from tracking.models import Event

METRICS = "count_targeted,count_delivered,count_rendered,count_unique_rendered,count_clicked,count_unique_clicked"


def _land(events: list[dict]) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        return events_insert(cursor, [event_row(event) for event in events])


def _totals(api) -> dict:
    params = {"from": "2024-03-01T00:00", "to": "2024-03-08T00:00", "metrics": METRICS}
    return api.get("/api/v1/metrics/deliverability", params).json()["results"][0]


def _expected(events: list[dict]) -> dict:
    expected = data.brute(events, start=data.START, end=data.START.replace(day=8))[None]
    return {name: expected.get(name, 0) for name in METRICS.split(",")}


def test_a_batch_partly_landed_before_inserts_and_rolls_up_only_its_new_events(api, db):
    events = data.generate(seed=11, messages=60)
    half, third = len(events) // 2, len(events) // 3
    _land(events[:half])
    landed = _land(events[third:])
    assert sorted(row["event_id"] for row in landed) == sorted(event["event_id"] for event in events[half:])
    assert all(row["id"] for row in landed)
    assert Event.objects.count() == len(events)
    assert _totals(api) == _expected(events)


def test_a_batch_landed_again_inserts_nothing_and_counts_nothing(api, db):
    events = data.generate(seed=12, messages=40)
    _land(events)
    before = _totals(api)
    assert _land(events) == []
    assert Event.objects.count() == len(events)
    assert _totals(api) == before == _expected(events)


def test_the_same_event_twice_in_one_batch_lands_once(api, db):
    event = data.generate(seed=13, messages=5)[0]
    assert len(_land([event, dict(event)])) == 1
    assert Event.objects.filter(event_id=event["event_id"]).count() == 1
    assert _totals(api)["count_targeted"] == 1


def test_rows_another_lander_put_inside_the_batchs_id_range_are_not_staged(api, db, monkeypatch):
    """Concurrent landers draw ids from one sequence, so a batch's ids can have gaps that
    the other's rows fill: only the batch's own rows are rolled up."""
    from analytics import ingest

    events = data.generate(seed=15, messages=20)
    intruder, batch = events[0], events[1:]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval('{ingest.SEQUENCE}')")
        last = cursor.fetchone()[0]
    # The batch gets every other id; the intruder lands with one of the skipped ones.
    monkeypatch.setattr(
        ingest,
        "_IDS",
        f"SELECT array_agg(v) FROM (SELECT nextval('{ingest.SEQUENCE}') AS v FROM generate_series(1, 2 * %s)) ids "
        f"WHERE v %% 2 = {last % 2}",
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tracking_event (id, {', '.join(ingest.EVENT_COLUMNS)}) VALUES ({last + 3}, "
            f"{', '.join(['%s'] * len(ingest.EVENT_COLUMNS))})",
            list(ingest.event_values(ingest.event_row(intruder))),
        )
        landed = ingest.events_insert(cursor, [ingest.event_row(event) for event in batch])
    assert sorted(row["id"] for row in landed)[0] == last + 2
    assert sorted(row["event_id"] for row in landed) == sorted(event["event_id"] for event in batch)
    assert _totals(api) == _expected(batch)


def test_engagement_events_take_from_and_subject_from_their_message_in_one_query(db, django_assert_num_queries):
    from datetime import timedelta

    at = data.START + timedelta(hours=1)

    def event(number: int, kind: str, message_id: str, **fields) -> dict:
        return {"event_id": str(90_000_000 + number), "type": kind, "timestamp": at, "message_id": message_id, **fields}

    sent = {"friendly_from": "news@sender.test", "subject": "Hello"}
    _land([event(1, "injection", "m1", **sent), event(2, "delivery", "m1", **sent)])
    landed = _land([
        event(3, "click", "m1"),
        event(4, "open", "m1"),
        event(5, "link_unsubscribe", "m1"),
        event(6, "injection", "m2", friendly_from="b@sender.test", subject="Same batch"),
        event(7, "initial_open", "m2"),
        event(8, "click", "m3"),  # its message never sent an event: stays empty
        event(9, "click", "m1", subject="own"),  # already set: kept
    ])  # fmt: skip
    by_id = {row["event_id"]: (row["friendly_from"], row["subject"]) for row in landed}
    assert by_id["90000003"] == by_id["90000004"] == by_id["90000005"] == ("news@sender.test", "Hello")
    assert by_id["90000007"] == ("b@sender.test", "Same batch")
    assert by_id["90000008"] == ("", "")
    assert by_id["90000009"] == ("", "own")

    from analytics.ingest import message_fields_fill

    with django_assert_num_queries(1), connection.cursor() as cursor:
        filled = message_fields_fill(cursor, [event(10, "click", "m1"), event(11, "open", "m1")])
    assert [(e["friendly_from"], e["subject"]) for e in filled] == [("news@sender.test", "Hello")] * 2
    with django_assert_num_queries(0), connection.cursor() as cursor:
        message_fields_fill(cursor, [event(12, "delivery", "m1")])


def test_an_unsubscribe_whose_token_named_only_message_and_recipient_takes_its_messages_fields(
    db, django_assert_num_queries
):
    """A recipient without tracking consent gets a List-Unsubscribe token naming only the
    message and the address (SPEC A.5); its event lands with the message's transmission,
    campaign, template, metadata, tags and source fields, as a granted recipient's would."""
    from datetime import timedelta

    from analytics.ingest import message_references_fill

    at = data.START + timedelta(hours=2)
    message = {"transmission_id": "77", "campaign_id": "spring", "template_id": "welcome", "template_version": "3",
               "transactional": False, "rcpt_meta": {"plan": "gold"}, "rcpt_tags": ["vip"], "rcpt_to": "jo@example.com"}  # fmt: skip

    def event(number: int, kind: str, message_id: str, **fields) -> dict:
        return {"event_id": str(91_000_000 + number), "type": kind, "timestamp": at, "message_id": message_id,
                "rcpt_to": "jo@example.com", **fields}  # fmt: skip

    _land([event(1, "injection", "m1", **message, recv_method="esmtp", rcpt_type="cc")])
    landed = _land([
        event(2, "list_unsubscribe", "m1"),
        event(3, "injection", "m2", **{**message, "campaign_id": "same-batch"}),
        event(4, "list_unsubscribe", "m2"),
        event(5, "list_unsubscribe", "m3"),  # its message sent no event: stays as it is
        event(6, "list_unsubscribe", "m4", **{**message, "campaign_id": "own"}),  # a full token: kept
    ])  # fmt: skip
    assert len(landed) == 5
    by_id = {e.event_id: e for e in Event.objects.filter(event_id__in=[row["event_id"] for row in landed])}
    first = by_id["91000002"]
    assert {column: getattr(first, column) for column in message} == message
    assert first.extra == {"recv_method": "esmtp", "rcpt_type": "cc"}
    assert (by_id["91000004"].campaign_id, by_id["91000004"].transmission_id) == ("same-batch", "77")
    assert (by_id["91000005"].transmission_id, by_id["91000005"].campaign_id) == ("", "")
    assert by_id["91000006"].campaign_id == "own"

    with django_assert_num_queries(1), connection.cursor() as cursor:
        (filled,) = message_references_fill(cursor, [event_row(event(7, "list_unsubscribe", "m1"))])
    assert (filled["transmission_id"], filled["rcpt_meta"]) == ("77", {"plan": "gold"})
    with django_assert_num_queries(0), connection.cursor() as cursor:
        message_references_fill(cursor, [event_row(event(8, "list_unsubscribe", "m1", transmission_id="77"))])


def test_a_buffered_record_becomes_a_full_row_with_its_unknown_fields_in_extra():
    from analytics.ingest import event_row

    row = event_row({"event_id": 7, "type": "click", "timestamp": "1709251200", "rcpt_to": "A@Example.COM",
                     "transactional": "1", "template_version": 2, "geo_ip": {"country": "US"}, "id": 99})  # fmt: skip
    assert row["event_id"] == "7" and row["timestamp"] == data.START
    assert (row["recipient_domain"], row["transactional"], row["template_version"]) == ("example.com", True, "2")
    assert row["extra"] == {"geo_ip": {"country": "US"}} and row["rcpt_tags"] == [] and row["subject"] == ""
    assert event_row(row) == row
