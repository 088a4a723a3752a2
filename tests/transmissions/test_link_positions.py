"""A sent message's links carry their position and the URL as written in the template
(issue 15): its clicks land as one report row per template link, however personalised the
URL, and one row per position when the same URL is written twice."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from tests.transmissions.helpers import parts, run

HTML = (
    '<html><body><a href="https://shop.example/">Shop</a>'
    '<p>Hi {{name}}</p><a href="https://shop.example/account?id={{id}}">Your account</a>'
    '<a href="https://shop.example/">Shop again</a></body></html>'
)
TEXT = "Account: https://shop.example/account?id={{id}}\n"


def test_clicks_land_per_template_link_and_position(api, client, relay, events):
    from analytics import selectors
    from analytics.landing import land_once
    from analytics.metrics import parse_metrics_query

    recipients = [
        {"address": f"r{n}@example.com", "substitution_data": {"id": str(n), "name": f"R{n}"}} for n in range(3)
    ]
    content = {"from": "news@sender.test", "subject": "Hi", "html": HTML, "text": TEXT}
    run(api, {"campaign_id": "links", "content": content, "recipients": recipients})
    assert len(relay.received) == 3
    for received in relay.received:
        html, text = parts(received.message)
        for path in re.findall(r'href="http://[^"/]+(/f/[A-Za-z0-9_-]+)"', html):
            assert client.get(path).status_code == 302
    land_once(consumer="test", block_ms=None)

    clicks = api.get("/api/v1/events/message", {"campaigns": "links", "events": "click"}).json()["results"]
    assert len(clicks) == 9
    assert {(e["engage_link_position"], e["engage_link_template_url"]) for e in clicks} == {
        (1, "https://shop.example/"),
        (2, "https://shop.example/account?id={{id}}"),
        (3, "https://shop.example/"),
    }
    assert len({e["target_link_url"] for e in clicks if e["engage_link_position"] == 2}) == 3

    now = timezone.now()
    query = parse_metrics_query(
        {"from": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "metrics": "count_clicked",
         "campaigns": "links"}, now=now + timedelta(hours=1),
    )  # fmt: skip
    rows = {
        (r["link_url"], r["link_position"]): (r["clicks"], r["unique_clicks"])
        for r in selectors.metrics_links(query=query)
    }
    assert rows == {
        ("https://shop.example/", 1): (3, 3),
        ("https://shop.example/account?id={{id}}", 2): (3, 3),
        ("https://shop.example/", 3): (3, 3),
    }


def test_an_rfc822_message_carries_positions_and_its_links_as_written(api, relay):
    """SMTP injection sends an ``email_rfc822`` source unsubstituted: its links are numbered
    the same way and written as sent, so its clicks group by URL and position too."""
    import time

    from django.conf import settings

    from tracking.signing import tracking_signer

    rfc = (
        "From: a@sender.test\nSubject: hi\nContent-Type: text/html\n\n"
        '<a href="https://shop.example/">top</a> <a href="https://shop.example/">bottom</a>\n'
    )
    run(api, {"content": {"email_rfc822": rfc}, "recipients": [{"address": "jo@example.com"}],
              "options": {"click_tracking": True}})  # fmt: skip
    html = relay.received[0].message.get_content()
    signer = tracking_signer()
    decoded = [
        signer.decode(token, now=int(time.time()), max_age=settings.ENGAGE_TRACKING_LINK_EXPIRY)
        for token in re.findall(r'href="[^"]+/f/([A-Za-z0-9_-]+)"', html)
    ]
    assert [(d.target_url, d.link_position, d.link_written_url) for d in decoded] == [
        ("https://shop.example/", 1, "https://shop.example/"),
        ("https://shop.example/", 2, "https://shop.example/"),
    ]
