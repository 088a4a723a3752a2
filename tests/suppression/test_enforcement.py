"""Enforcement at generation, end to end with the test relay (SPEC A.5, B §11.8): unsubscribe
through the one-click POST, land, send again; a hard bounce from the relay; DELETE."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.db import connection

from suppression.models import SuppressionEntry
from tests.transmissions.helpers import body, run
from tracking.models import Event
from transmissions.models import Message

pytestmark = pytest.mark.django_db

ADDRESS = "jo@example.com"
REASON = "554 5.7.1 recipient address was suppressed due to customer policy"


def send(api, **options):
    return run(api, body(options=options) if options else body())


def one_click(client, received) -> None:
    """POST the message's List-Unsubscribe URL (RFC 8058), as a mailbox provider does."""
    url = re.search(r"<(https?://[^>]+/u/[^>]+)>", received.message["List-Unsubscribe"]).group(1)
    response = client.post(urlsplit(url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200, response.content


def events_of(transmission) -> list[tuple[str, str, str, str]]:
    return list(
        Event.objects.filter(transmission_id=str(transmission.pk))
        .order_by("timestamp", "id")
        .values_list("type", "bounce_class", "error_code", "reason")
    )


def unsubscribed(api, client, relay, land):
    run(api, body())
    assert len(relay.received) == 1
    one_click(client, relay.received[0])
    one_click(client, relay.received[0])
    land()


def test_after_a_one_click_unsubscribe_the_next_non_transactional_message_bounces_unsent(api, client, relay, land):
    unsubscribed(api, client, relay, land)
    assert Event.objects.filter(type="list_unsubscribe").count() == 1
    entry = SuppressionEntry.objects.get()
    assert (entry.recipient, entry.type, entry.source) == (ADDRESS, "non_transactional", "List Unsubscribe")

    transmission = send(api)
    land()
    assert len(relay.received) == 1
    message = Message.objects.get(transmission=transmission)
    assert (message.state, message.last_error) == ("bounced", REASON)
    assert events_of(transmission) == [("injection", "", "", ""), ("bounce", "25", "554", REASON)]
    assert SuppressionEntry.objects.count() == 1  # class 25 adds nothing


def test_a_transactional_message_still_goes(api, client, relay, land):
    unsubscribed(api, client, relay, land)
    transmission = send(api, transactional=True)
    assert len(relay.received) == 2
    assert Message.objects.get(transmission=transmission).state == "delivered"


def test_skip_suppression_sends_it(api, client, relay, land):
    unsubscribed(api, client, relay, land)
    transmission = send(api, skip_suppression=True)
    assert len(relay.received) == 2
    assert Message.objects.get(transmission=transmission).state == "delivered"


def test_delete_on_the_entry_lets_mail_through_again(api, client, relay, land):
    unsubscribed(api, client, relay, land)
    assert api.delete(f"/api/v1/suppression-list/{ADDRESS}").status_code == 204
    transmission = send(api)
    assert len(relay.received) == 2
    assert Message.objects.get(transmission=transmission).state == "delivered"


def test_a_hard_bounce_from_the_relay_suppresses_the_address_for_both_types(api, relay, land):
    relay.handler.answers.append("550 5.1.1 no such user")
    first = send(api)
    land()
    assert [(e.type, e.source) for e in SuppressionEntry.objects.order_by("type")] == [
        ("non_transactional", "Bounce Rule"),
        ("transactional", "Bounce Rule"),
    ]
    message_id = Message.objects.get(transmission=first).message_id
    assert message_id in SuppressionEntry.objects.first().description
    transmission = send(api, transactional=True)
    assert len(relay.received) == 0
    assert Message.objects.get(transmission=transmission).state == "bounced"


def test_the_check_is_one_query_per_batch(api, relay):
    from suppression.services import suppression_add

    for i in range(0, 20, 2):
        suppression_add(
            recipient=f"r{i}@example.com", types=["non_transactional"], source="Manually Added", description=""
        )
    recipients = [{"address": {"email": f"r{i}@example.com"}} for i in range(20)]
    with connection.execute_wrapper(_counting := _Count()):
        transmission = run(api, body(recipients=recipients))
    assert len(relay.received) == 10
    assert Message.objects.filter(transmission=transmission, state="bounced").count() == 10
    assert _counting.lookups == 1


class _Count:
    def __init__(self) -> None:
        self.lookups = 0

    def __call__(self, execute, sql, params, many, context):
        if "suppression_suppressionentry" in sql and "ANY" in sql:
            self.lookups += 1
        return execute(sql, params, many, context)


def test_a_delayed_message_suppressed_before_its_retry_bounces_unsent(api, relay, land):
    from suppression.services import suppression_add
    from transmissions.sending import message_retry

    relay.handler.answers = ["451 4.3.0 try later"]
    transmission = send(api)
    message = Message.objects.get(transmission=transmission)
    assert message.state == "delayed"
    suppression_add(recipient=ADDRESS, types=["non_transactional"], source="Manually Added", description="")

    assert message_retry(message_pk=message.pk, token="retry") == ("bounced", 2)
    land()
    assert relay.received == []
    message.refresh_from_db()
    assert (message.state, message.last_error) == ("bounced", REASON)
    assert events_of(transmission)[-1] == ("bounce", "25", "554", REASON)
    assert [kind for kind, *_ in events_of(transmission)].count("injection") == 1


def compliance(recipient: str = ADDRESS) -> None:
    SuppressionEntry.objects.create(recipient=recipient, type="non_transactional", source="Compliance")


def test_skip_suppression_does_not_skip_a_compliance_entry(api, relay, land):
    compliance()
    transmission = send(api, skip_suppression=True)
    land()
    assert relay.received == []
    assert Message.objects.get(transmission=transmission).state == "bounced"
    assert events_of(transmission) == [("injection", "", "", ""), ("bounce", "25", "554", REASON)]


def test_skip_suppression_skips_every_other_entry_but_not_compliance_in_one_batch(api, relay):
    from suppression.services import suppression_add

    compliance("c@example.com")
    suppression_add(recipient="m@example.com", types=["non_transactional"], source="Manually Added", description="")
    recipients = [{"address": {"email": "c@example.com"}}, {"address": {"email": "m@example.com"}}]
    transmission = run(api, body(recipients=recipients, options={"skip_suppression": True}))
    states = dict(Message.objects.filter(transmission=transmission).values_list("recipient__address__email", "state"))
    assert states == {"c@example.com": "bounced", "m@example.com": "delivered"}
    assert [r.rcpt_tos for r in relay.received] == [["m@example.com"]]


def test_skip_suppression_on_a_retry_still_checks_compliance(api, relay):
    from transmissions.sending import message_retry

    relay.handler.answers = ["451 4.3.0 try later"]
    transmission = send(api, skip_suppression=True)
    message = Message.objects.get(transmission=transmission)
    compliance()
    assert message_retry(message_pk=message.pk, token="retry") == ("bounced", 2)
    assert relay.received == []


def test_a_stored_recipient_without_an_address_fails_alone_and_the_batch_is_still_checked(api, relay):
    """One unreadable stored recipient must not fail the batch's suppression check: it fails
    generation alone (with its event) and the suppressed one beside it still bounces unsent."""
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    SuppressionEntry.objects.create(recipient="gone@example.com", type="non_transactional", source="Manually Added")
    recipients = [{"address": {"email": email}} for email in ("ok@example.com", "gone@example.com", "bad@example.com")]
    response = api.post("/api/v1/transmissions", body(recipients=recipients), format="json")
    assert response.status_code == 200, response.content
    tid = int(response.json()["results"]["id"])
    Message.objects.filter(transmission_id=tid, recipient__address__email="bad@example.com").update(recipient={})
    for chunk in transmission_start_generation(transmission_id=tid):
        chunk_send(transmission_id=tid, chunk=chunk, token="test")
    states = dict(Message.objects.filter(transmission_id=tid).values_list("message_id", "state"))
    assert sorted(states.values()) == ["bounced", "delivered", "generation_failed"]
    assert [received.rcpt_tos for received in relay.received] == [["ok@example.com"]]


def test_a_denied_recipients_one_click_unsubscribe_suppresses_and_its_event_names_the_campaign(
    api, client, relay, land
):
    """The token names only the message and the address (SPEC A.5: no metadata in any URL);
    the landed event takes the campaign, transmission, metadata and tags from the message."""
    first = run(api, body(recipients=[{"address": {"email": ADDRESS}, "tags": ["t1"], "metadata": {"plan": "gold"},
                                       "tracking_consent": "denied"}]))  # fmt: skip
    one_click(client, relay.received[0])
    land()
    assert SuppressionEntry.objects.get().source == "List Unsubscribe"
    event = Event.objects.get(type="list_unsubscribe")
    assert (event.rcpt_to, event.transmission_id, event.campaign_id, event.template_id) == (
        ADDRESS, str(first.pk), "camp", "inline",
    )  # fmt: skip
    assert (event.rcpt_meta, event.rcpt_tags) == ({"tx": "1", "shared": "tx", "plan": "gold"}, ["t1"])
    assert (event.friendly_from, event.subject) == ("news@sender.test", "Hello World")
    transmission = send(api)
    assert len(relay.received) == 1
    assert Message.objects.get(transmission=transmission).state == "bounced"
