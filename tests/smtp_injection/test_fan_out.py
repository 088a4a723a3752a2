"""Per-copy differences of the cc / bcc / archive fan-out (issue 13, Deliver 6;
SMTP-INJECTION.md §1.6): a bcc copy names only itself in ``Bcc:``, an archive copy carries the
envelope copy's tracked links, so its clicks count for that recipient."""

from __future__ import annotations

import re

from tests.smtp_injection.helpers import inject, login, message, send_all, transmission_id
from transmissions.models import Message

HEADER = {
    "bcc": [{"email": "bcc@example.com", "name": "Bee Cee"}, "b2@example.com"],
    "archive": ["arch@example.com"],
    "options": {"click_tracking": True, "open_tracking": True},
}


def _inject(smtp, smtp_key) -> int:
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message(HEADER))
    client.quit()
    assert code == 250, reply
    return transmission_id(reply)


def _copies(relay) -> dict:
    return {received.rcpt_tos[0]: received for received in relay.received}


def _links(received) -> list[str]:
    html = next(p for p in received.message.walk() if p.get_content_type() == "text/html").get_content()
    return re.findall(r'href="https?://[^"/]+(/f/[A-Za-z0-9_-]+)"', html)


def test_each_bcc_copy_names_only_its_own_address_and_no_other_copy_has_bcc(smtp, smtp_key, relay):
    send_all(_inject(smtp, smtp_key))
    copies = _copies(relay)
    assert set(copies) == {"jo@example.com", "bcc@example.com", "b2@example.com", "arch@example.com"}
    assert copies["bcc@example.com"].message.get_all("Bcc") == ["Bee Cee <bcc@example.com>"]
    assert copies["b2@example.com"].message.get_all("Bcc") == ["b2@example.com"]
    assert copies["jo@example.com"].message.get_all("Bcc") is None
    assert copies["arch@example.com"].message.get_all("Bcc") is None


def test_an_address_named_twice_in_the_envelope_gets_one_copy(smtp, smtp_key, relay):
    """An attacker's finding: RCPT TO twice (Django's SMTP backend does it for an address in
    both to and cc) gave two copies. One per address, the domain compared without case, the
    local part exactly (RFC 5321 §2.4), as the cc/bcc/archive copies already were."""
    client = smtp.client()
    login(client, smtp_key)
    rcpts = ["jo@example.com", "jo@EXAMPLE.com", "jo@example.com", "Jo@example.com"]
    code, reply = inject(client, rcpts, message({"cc": ["jo@example.com"]}))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    send_all(tid)
    assert sorted(received.rcpt_tos[0] for received in relay.received) == ["Jo@example.com", "jo@example.com"]
    assert Message.objects.filter(transmission_id=tid).count() == 2


def test_an_archive_copy_clicks_and_opens_for_the_envelope_recipient(smtp, smtp_key, relay, events, api, client):
    from analytics.landing import land_once

    tid = _inject(smtp, smtp_key)
    send_all(tid)
    copies = _copies(relay)
    archive_links, to_links = _links(copies["arch@example.com"]), _links(copies["jo@example.com"])
    assert archive_links and len(archive_links) == len(to_links)
    assert _links(copies["bcc@example.com"]) != to_links  # a bcc copy has its own links
    assert client.get(archive_links[0]).status_code == 302
    land_once(consumer="test", block_ms=None)
    found = api.get("/api/v1/events/message", {"transmissions": str(tid), "events": "click"}).json()["results"]
    jo = Message.objects.get(transmission_id=tid, email="jo@example.com")
    assert [(event["rcpt_to"], event["message_id"]) for event in found] == [("jo@example.com", jo.message_id)]
    assert found[0]["recv_method"] == "esmtp" and "rcpt_type" not in found[0]
    assert found[0]["template_id"] == f"smtp_{tid}"
    unsubscribe = copies["arch@example.com"].message["List-Unsubscribe"]
    assert unsubscribe and unsubscribe != copies["jo@example.com"].message["List-Unsubscribe"]


def test_a_click_on_a_bcc_copy_says_it_came_over_smtp_as_a_bcc(smtp, smtp_key, relay, events, api, client):
    from analytics.landing import land_once

    tid = _inject(smtp, smtp_key)
    send_all(tid)
    assert client.get(_links(_copies(relay)["b2@example.com"])[0]).status_code == 302
    land_once(consumer="test", block_ms=None)
    found = api.get("/api/v1/events/message", {"transmissions": str(tid), "events": "click"}).json()["results"]
    assert [(e["rcpt_to"], e["recv_method"], e["rcpt_type"]) for e in found] == [("b2@example.com", "esmtp", "bcc")]
