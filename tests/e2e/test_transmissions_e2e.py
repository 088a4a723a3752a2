"""The path a user walks, with real parts: POST → Celery worker (subprocess) generates and
hands off to an SMTP relay → parse the mail → open pixel and click → events in PostgreSQL.
Plus: a worker SIGKILLed mid-transmission loses nothing and repeats at most its message in
flight; 4xx then 2xx is a delay then a delivery; 5xx is a bounce."""

from __future__ import annotations

import random
import re
import time
from collections import Counter

import pytest

from tests.e2e.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/transmissions"
TARGET = "https://shop.example.com/offer?id=42&u=Jo"
CONTENT = {
    "from": {"email": "news@sender.test", "name": "News"},
    "subject": "Hello {{name}}",
    "html": '<html><body><p>Hi {{name}}</p><a href="https://shop.example.com/offer?id=42&amp;u={{name}}" '
    'data-msys-linkname="offer">Buy</a></body></html>',
    "text": "Hi {{name}}: https://shop.example.com/offer?id=42&u={{name}}",
}


def all_events() -> list:
    from tracking.models import Event

    return list(Event.objects.values_list("type", "transmission_id", "rcpt_to"))


def events_of(transmission_id: str) -> list:
    from tracking.models import Event

    return list(Event.objects.filter(transmission_id=transmission_id).order_by("timestamp"))


def test_post_send_open_click_and_events_land(api, client, e2e, relay):
    response = api.post(
        URL,
        {
            "campaign_id": "e2e-camp",
            "metadata": {"plan": "gold"},
            "substitution_data": {"name": "Jo"},
            "content": CONTENT,
            "recipients": [
                {"address": {"email": "jo@example.com", "name": "Jo"}, "tags": ["vip"], "metadata": {"age": 7}}
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    tid = response.json()["results"]["id"]
    wait_for(lambda: relay.received, 30, what="the relay to receive the message")
    message = relay.received[0].message
    assert message["To"] == "Jo <jo@example.com>"
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
    pixels = re.findall(r'<img src="http://testserver(/q/[A-Za-z0-9_-]+)"', html)
    assert len(pixels) == 2  # initial_open (top) and open (bottom)
    click = re.search(r'href="http://testserver(/f/[A-Za-z0-9_-]+)"', html).group(1)
    text_click = re.search(r"http://testserver(/f/[A-Za-z0-9_-]+)", text).group(1)
    assert "shop.example.com" not in html and "shop.example.com" not in text

    for pixel in pixels:
        opened = client.get(pixel, HTTP_USER_AGENT="E2E-Agent/1.0")
        assert opened.status_code == 200 and opened["Content-Type"] == "image/gif"
    clicked = client.get(click, HTTP_USER_AGENT="E2E-Agent/1.0")
    assert clicked.status_code == 302
    assert clicked["Location"] == TARGET
    assert client.get(text_click).status_code == 302

    wanted = {"injection", "delivery", "initial_open", "open", "click"}
    found = wait_for(
        lambda: (evs := events_of(tid)) and wanted <= {e.type for e in evs} and len(evs) >= 6 and evs,
        20,
        0.25,
        lambda: f"events in PostgreSQL, have {all_events()}",
    )
    by_type = {e.type: e for e in found}
    clicks = [e for e in found if e.type == "click"]
    assert sorted(e.target_link_name for e in clicks) == ["Raw URL", "offer"]
    click_event = next(e for e in clicks if e.target_link_name == "offer")
    assert click_event.campaign_id == "e2e-camp"
    assert click_event.rcpt_to == "jo@example.com"
    assert click_event.rcpt_meta == {"plan": "gold", "age": 7}
    assert click_event.rcpt_tags == ["vip"]
    assert click_event.target_link_url == TARGET
    assert click_event.target_link_name == "offer"
    assert click_event.user_agent == "E2E-Agent/1.0"
    assert by_type["open"].user_agent == "E2E-Agent/1.0"
    delivery = by_type["delivery"]
    assert delivery.template_id == "inline"
    assert delivery.rcpt_meta == {"plan": "gold", "age": 7}
    assert delivery.subject == "Hello Jo"
    assert delivery.friendly_from == "news@sender.test"
    detail = wait_for(
        lambda: (d := api.get(f"{URL}/{tid}").json()["results"]["transmission"])["state"] == "Success" and d,
        10, what="Success",
    )  # fmt: skip
    assert detail["num_generated"] == 1 and detail["generation_end_time"]


def test_a_worker_killed_mid_transmission_loses_nothing_and_repeats_at_most_the_message_in_flight(api, e2e, relay):
    relay.handler.delay = 0.01  # the relay takes 10 ms to commit each message
    recipients = [{"address": f"r{i}@example.com"} for i in range(300)]
    response = api.post(URL, {"content": {**CONTENT, "html": None}, "recipients": recipients,
                              "substitution_data": {"name": "x"}}, format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    tid = response.json()["results"]["id"]
    wait_for(lambda: len(relay.received) >= 20, 30, 0.01, what="sending to start")
    e2e.worker.kill(after=random.uniform(0.05, 0.25))
    time.sleep(0.5)  # a killed process's sockets close only once the kernel has torn it down
    before = list(relay.received)
    assert len(before) < 300, "the kill landed after the whole transmission"
    in_flight = {r.peer: r.rcpt_tos[0] for r in before}  # the last message kept on each killed connection
    e2e.worker.start()
    wait_for(
        lambda: len({r.rcpt_tos[0] for r in relay.received}) >= 300, 60, 0.2,
        what=f"all 300 recipients (had {len(before)} at the kill)",
    )  # fmt: skip
    time.sleep(2)  # anything sent twice would arrive now
    counts = Counter(r.rcpt_tos[0] for r in relay.received)
    assert len(counts) == 300  # nothing lost
    # Nothing recorded as handed off is sent again. What SMTP cannot make exactly-once
    # (RFC 1047; transmissions/sending.py) is the message whose end of DATA the relay had
    # when the worker died: the relay commits it, the worker never reads the 250, and the
    # restarted worker sends it again. With a relay that takes 10 ms to answer, that is
    # often the case; it can only ever be the last message kept on a killed connection.
    repeated = {rcpt: n for rcpt, n in counts.items() if n != 1}
    assert all(n == 2 for n in repeated.values()), repeated
    assert set(repeated) <= set(in_flight.values()), (repeated, in_flight)
    for rcpt in repeated:  # the same message again, under its Message-ID (which mailboxes deduplicate)
        copies = [r.message for r in relay.received if r.rcpt_tos[0] == rcpt]
        assert copies[0]["Message-ID"] == copies[1]["Message-ID"], rcpt
    wait_for(
        lambda: api.get(f"{URL}/{tid}").json()["results"]["transmission"]["state"] == "Success", 15, 0.25,
        what="Success after the restart",
    )  # fmt: skip
    # Every message has exactly one injection and one delivery event, re-claimed ones
    # included: its events were written with its state (tracking.outbox).
    from tracking.models import Event

    def counts_by_type() -> Counter:
        return Counter(Event.objects.filter(transmission_id=str(tid)).values_list("type", flat=True))

    wait_for(lambda: counts_by_type()["delivery"] >= 300, 30, 0.25, what="300 delivery events landed")
    time.sleep(1.5)  # a duplicate would land now
    assert counts_by_type() == {"injection": 300, "delivery": 300}
    per_message = Counter(
        Event.objects.filter(transmission_id=str(tid), type="injection").values_list("rcpt_to", flat=True)
    )
    assert set(per_message.values()) == {1} and len(per_message) == 300
    ids = list(Event.objects.filter(transmission_id=str(tid)).values_list("event_id", flat=True))
    assert len(ids) == len(set(ids))


def test_4xx_then_2xx_is_a_delay_then_a_delivery_and_5xx_a_bounce(api, e2e, relay):
    relay.handler.answers = ["451 4.7.1 greylisted, try again"]
    delayed = api.post(URL, {"content": CONTENT, "recipients": [{"address": "grey@example.com"}]}, format="json")
    tid = delayed.json()["results"]["id"]
    wait_for(lambda: any(r.rcpt_tos == ["grey@example.com"] for r in relay.received), 30, what="the retried message")
    found = wait_for(
        lambda: (evs := events_of(tid)) and {"delay", "delivery"} <= {e.type for e in evs} and evs, 20, 0.25
    )
    delay = next(e for e in found if e.type == "delay")
    assert delay.error_code == "451"
    assert [e.type for e in found].index("delay") < [e.type for e in found].index("delivery")

    relay.handler.answers = ["550 5.1.1 user unknown"]
    bounced = api.post(URL, {"content": CONTENT, "recipients": [{"address": "gone@example.com"}]}, format="json")
    tid = bounced.json()["results"]["id"]
    found = wait_for(lambda: (evs := events_of(tid)) and "bounce" in {e.type for e in evs} and evs, 30, 0.25)
    bounce = next(e for e in found if e.type == "bounce")
    assert bounce.bounce_class == "10"
    assert bounce.error_code == "550"
    assert not any(r.rcpt_tos == ["gone@example.com"] for r in relay.received)
