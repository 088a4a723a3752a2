"""Links in ``dynamic_html`` / ``dynamic_plain`` chunks are click-tracked in delivered mail
(SPEC B §4.5), with the template's rules; links in plain substitution values are not."""

from __future__ import annotations

import re

from tests.transmissions.helpers import parts, run

CONTENT = {
    "from": "news@sender.test",
    "subject": "Deals",
    "html": "<html><body><p>{{ render_dynamic_content(dynamic_html.offer) }}</p><div>{{{ plain }}}</div></body></html>",
    "text": "Offer: {{ render_dynamic_content(dynamic_plain.offer) }}\nPlain: {{ plain_url }}\n",
}
SUBSTITUTION_DATA = {
    "name": "Jo Li",
    "plain": '<a href="https://untracked.example/value">v</a>',
    "plain_url": "https://untracked.example/text",
    "dynamic_html": {
        "offer": '<a href="https://example.com/deal?u={{name}}" data-msys-linkname="deal">Deal</a>'
        '<a href="https://example.com/off" data-msys-clicktrack="0">off</a>'
    },
    "dynamic_plain": {"offer": "https://example.com/plain-deal?u={{name}}"},
}


def body() -> dict:
    return {
        "content": CONTENT,
        "substitution_data": SUBSTITUTION_DATA,
        "recipients": [{"address": "jo@example.com"}],
    }


def test_a_dynamic_html_link_is_tracked_and_its_click_records_the_target(api, client, relay, events):
    from analytics.landing import land_once

    transmission = run(api, body())
    html, text = parts(relay.received[0].message)
    tracked = re.findall(r'href="http://[^"/]+(/f/[A-Za-z0-9_-]+)"', html)
    assert len(tracked) == 1, html
    assert "example.com/deal" not in html and "data-msys" not in html
    assert 'href="https://example.com/off"' in html  # data-msys-clicktrack="0", as in a template
    assert 'href="https://untracked.example/value"' in html  # a plain value is never scanned
    assert re.search(r"Offer: http://\S+/f/[A-Za-z0-9_-]+\r?\n", text), text
    assert "Plain: https://untracked.example/text" in text

    response = client.get(tracked[0])
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/deal?u=Jo%20Li"
    land_once(consumer="test", block_ms=None)
    found = api.get("/api/v1/events/message", {"transmissions": str(transmission.id), "events": "click"}).json()[
        "results"
    ]
    assert [(e["target_link_url"], e["target_link_name"]) for e in found] == [
        ("https://example.com/deal?u=Jo%20Li", "deal")
    ]


def test_with_click_tracking_off_dynamic_links_stay_as_written(api, relay):
    run(api, {**body(), "options": {"click_tracking": False}})
    html, text = parts(relay.received[0].message)
    assert 'href="https://example.com/deal?u=Jo%20Li"' in html
    assert "/f/" not in html and "Offer: https://example.com/plain-deal?u=Jo%20Li" in text
