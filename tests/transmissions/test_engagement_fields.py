"""Engagement events carry their message's ``friendly_from`` and ``subject`` (issue 11,
Deliver 6): a click and an open on a delivered message, landed as production lands them,
are found by the events search's ``from_addresses`` and ``subjects`` filters."""

from __future__ import annotations

import re

from tests.transmissions.helpers import body, parts, run

SEARCH = "/api/v1/events/message"


def _hit_open_and_click(client, message) -> None:
    html, _text = parts(message)
    click = re.search(r'href="http://[^"/]+(/f/[A-Za-z0-9_-]+)"', html).group(1)
    pixel = re.search(r'<img src="http://[^"/]+(/q/[A-Za-z0-9_-]+)"', html).group(1)
    assert client.get(click).status_code == 302
    assert client.get(pixel).status_code == 200


def test_an_open_and_a_click_carry_the_from_and_subject_of_their_message(api, client, relay, events):
    from analytics.landing import land_once

    transmission = run(api, body())
    _hit_open_and_click(client, relay.received[0].message)
    buffered = events()
    assert sorted(event["type"] for event in buffered) == ["click", "delivery", "initial_open", "injection"]
    assert all(not event.get("subject") for event in buffered if event["type"] in ("click", "initial_open"))
    assert land_once(consumer="test", block_ms=None) == 4

    params = {"transmissions": str(transmission.id), "events": "click,initial_open,open"}
    found = api.get(SEARCH, params).json()["results"]
    assert sorted(event["type"] for event in found) == ["click", "initial_open"]
    for event in found:
        assert event["friendly_from"] == "news@sender.test"
        assert event["subject"] == "Hello World"
    by_from = api.get(SEARCH, {**params, "from_addresses": "news@sender.test"}).json()["results"]
    by_subject = api.get(SEARCH, {**params, "subjects": "Hello World"}).json()["results"]
    assert len(by_from) == len(by_subject) == 2
    assert api.get(SEARCH, {**params, "subjects": "Goodbye"}).json()["results"] == []


def test_engagement_landed_in_a_later_batch_still_gets_the_fields(api, client, relay, events):
    from analytics.landing import land_once

    transmission = run(api, body(substitution_data={"name": "Later"}))
    assert land_once(consumer="test", block_ms=None) == 2  # injection and delivery land first
    _hit_open_and_click(client, relay.received[0].message)
    assert land_once(consumer="test", block_ms=None) == 2
    found = api.get(SEARCH, {"transmissions": str(transmission.id), "subjects": "Hello Later"}).json()["results"]
    assert sorted(event["type"] for event in found) == ["click", "delivery", "initial_open", "injection"]


def test_a_long_subject_is_sent_whole_and_cut_in_every_event(api, client, relay, events):
    """An attacker's finding: each event of each copy carried the whole subject (a folded
    900 KB one on a message with 100 copies made an events page of 182 MB). The message
    goes as written; its events carry the first 1,023 characters and "…"."""
    from analytics.landing import land_once
    from tests.transmissions.helpers import CONTENT

    subject = "word " * 20_000
    run(api, body(content={**CONTENT, "subject": subject}))
    (received,) = relay.received
    assert received.message["Subject"] == subject.strip()
    _hit_open_and_click(client, received.message)
    assert land_once(consumer="test", block_ms=None) == 4
    found = api.get(SEARCH, {"events": "injection,delivery,click,initial_open"}).json()["results"]
    assert len(found) == 4
    assert all(event["subject"] == subject[:1023] + "…" for event in found), [len(e["subject"]) for e in found]
