"""The suppression list the way a user walks it (issue 14), with a real Celery worker (with
beat: it lands the events) and a real SMTP relay: a one-click unsubscribe POSTed to the
message's List-Unsubscribe URL → the next non-transactional message is not relayed and ends
with its class-25 bounce; a transactional one still goes, and so does one with
``skip_suppression``; DELETE on the entry lets mail through again; a 5xx hard bounce from the
relay suppresses the address for both types."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/transmissions"
ADDRESS = "jo@example.com"
REASON = "554 5.7.1 recipient address was suppressed due to customer policy"
CONTENT = {
    "from": {"email": "news@sender.test", "name": "News"},
    "subject": "Hello {{name}}",
    "html": '<html><body><p>Hi {{name}}</p><a href="https://shop.example.com/offer">Buy</a></body></html>',
    "text": "Hi {{name}}: https://shop.example.com/offer",
}


def send(api, address: str = ADDRESS, **options) -> str:
    """POST a one-recipient transmission; its id."""
    body = {"campaign_id": "e2e-supp", "substitution_data": {"name": "Jo"}, "content": CONTENT,
            "recipients": [{"address": {"email": address}}], "options": options}  # fmt: skip
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]["id"]


def ended(api, tid: str) -> list[tuple[str, str, str, str]]:
    """The transmission's landed events once it is done and its last event has landed:
    (type, bounce_class, error_code, reason), oldest first."""
    from tracking.models import Event

    def landed():
        state = api.get(f"{URL}/{tid}").json()["results"]["transmission"]["state"]
        events = list(
            Event.objects.filter(transmission_id=str(tid))
            .order_by("timestamp", "id")
            .values_list("type", "bounce_class", "error_code", "reason")
        )
        return state == "Success" and {kind for kind, *_ in events} & {"delivery", "bounce"} and events

    return wait_for(landed, 30, 0.25, what=f"transmission {tid} to end and its events to land")


def relayed_to(relay, address: str) -> int:
    return sum(1 for received in relay.received if received.rcpt_tos == [address])


def entries() -> list[tuple[str, str, str]]:
    from suppression.models import SuppressionEntry

    return sorted(SuppressionEntry.objects.values_list("recipient", "type", "source"))


def test_a_one_click_unsubscribe_stops_the_next_non_transactional_message_until_the_entry_is_deleted(
    api, client, e2e, relay
):
    first = send(api)
    assert [kind for kind, *_ in ended(api, first)] == ["injection", "delivery"]
    (received,) = relay.received
    unsubscribe = re.search(r"<(http://testserver/u/[A-Za-z0-9_-]+)>", received.message["List-Unsubscribe"]).group(1)
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for _ in range(2):  # a mailbox provider may POST twice: one event, one entry
        posted = client.post(urlsplit(unsubscribe).path, {"List-Unsubscribe": "One-Click"})
        assert posted.status_code == 200 and b"You have been unsubscribed." in posted.content
    wait_for(entries, 20, 0.25, what="the unsubscribe to land and add its entry")
    assert entries() == [(ADDRESS, "non_transactional", "List Unsubscribe")]

    suppressed = send(api)
    assert ended(api, suppressed) == [("injection", "", "", ""), ("bounce", "25", "554", REASON)]
    assert relayed_to(relay, ADDRESS) == 1  # only the first

    transactional = send(api, transactional=True)
    assert ended(api, transactional)[-1][0] == "delivery"
    skipped = send(api, skip_suppression=True)
    assert ended(api, skipped)[-1][0] == "delivery"
    assert relayed_to(relay, ADDRESS) == 3

    from tracking.models import Event

    assert Event.objects.filter(type="list_unsubscribe", rcpt_to=ADDRESS).count() == 1
    assert entries() == [(ADDRESS, "non_transactional", "List Unsubscribe")]  # class 25 added nothing
    assert api.delete(f"/api/v1/suppression-list/{ADDRESS}").status_code == 204
    again = send(api)
    assert ended(api, again)[-1][0] == "delivery"
    assert relayed_to(relay, ADDRESS) == 4


def test_a_hard_bounce_from_the_relay_suppresses_the_address_for_both_types(api, e2e, relay):
    gone = "gone@example.com"
    relay.handler.refuse[gone] = "550 5.1.1 no such user"
    bounced = send(api, gone)
    assert ended(api, bounced)[-1][:3] == ("bounce", "10", "550")
    wait_for(lambda: len(entries()) == 2, 20, 0.25, what="the hard bounce to add its entries")
    assert entries() == [(gone, "non_transactional", "Bounce Rule"), (gone, "transactional", "Bounce Rule")]

    del relay.handler.refuse[gone]  # the relay would take it now: only the list stops it
    for options in ({}, {"transactional": True}):
        tid = send(api, gone, **options)
        assert ended(api, tid) == [("injection", "", "", ""), ("bounce", "25", "554", REASON)]
    assert relay.received == []
