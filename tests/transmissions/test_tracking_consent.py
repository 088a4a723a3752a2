"""Tracking consent at generation (SPEC A.5): a recipient without consent gets the parts open
and click tracking off would give; the register is read once per claimed batch."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error
from tests.transmissions.helpers import URL, body, run

pytestmark = pytest.mark.django_db

HTML = (
    '<html><body><p>Hi {{name}}</p><a href="https://example.com/offer?u={{name}}" data-msys-linkname="o">go</a>'
    '<a href="https://example.com/stop" data-msys-unsubscribe="1">stop</a></body></html>'
)
TEXT = "Hi {{name}}, see https://example.com/text"
CONTENT = {"from": {"email": "news@sender.test"}, "subject": "Hi", "html": HTML, "text": TEXT}


def _parts(received) -> dict[str, bytes]:
    """Each text part's decoded bytes, by content type."""
    return {
        part.get_content_type(): part.get_payload(decode=True)
        for part in received.message.walk()
        if part.get_content_type() in ("text/html", "text/plain")
    }


def _sent(api, relay, recipients, **options):
    relay.handler.received.clear()
    run(api, body(content=CONTENT, recipients=recipients, options=options))
    return {r.rcpt_tos[0]: r for r in relay.received}


def _tracked(parts: dict[str, bytes]) -> bool:
    return b"/f/" in parts["text/html"] or b"/q/" in parts["text/html"] or b"/f/" in parts["text/plain"]


def test_a_denied_recipient_gets_the_parts_tracking_off_gives_byte_for_byte(api, relay):
    rcpt = {"address": "ada@example.com", "metadata": {"secret": "m"}, "tags": ["t"]}
    off = _sent(api, relay, [rcpt], open_tracking=False, click_tracking=False)["ada@example.com"]
    denied = _sent(api, relay, [{**rcpt, "tracking_consent": "denied"}])["ada@example.com"]
    tracked = _sent(api, relay, [rcpt])["ada@example.com"]
    assert _parts(denied) == _parts(off)
    assert b'href="https://example.com/stop"' in _parts(denied)["text/html"]
    assert _tracked(_parts(tracked)) and not _tracked(_parts(denied))
    # List-Unsubscribe keeps working (tests/suppression/test_enforcement.py); its URL names the
    # message and the recipient, nothing else
    decoded = _unsubscribe_token(denied)
    assert decoded.kind == "unsubscribe" and decoded.rcpt_to == "ada@example.com" and decoded.message_id
    assert (decoded.transmission_id, decoded.campaign_id, decoded.template_id, decoded.template_version) == (
        "", None, None, None,
    )  # fmt: skip
    assert (decoded.rcpt_meta, decoded.rcpt_tags, decoded.event_extra) == ({}, [], {})


def _unsubscribe_token(received):
    from tracking.signing import tracking_signer

    token = received.message["List-Unsubscribe"].split("/u/")[1].rstrip(">")
    return tracking_signer().decode(token, now=2**40, max_age=2**41)


def test_a_denied_recipients_unsubscribe_url_reads_as_no_more_than_the_message_and_the_recipient(api, relay):
    """Tokens are signed, not encrypted: anyone holding the URL can base64-decode it. A denied
    recipient's shows the message id and the address, and no campaign, transmission,
    template, metadata or tag; a granted one's carries them (the events need them)."""
    import base64

    rcpt = {"address": "ada@example.com", "metadata": {"plan": "gold-secret"}, "tags": ["vip-tag"]}
    options = {"campaign_id": "spring-campaign", "metadata": {"tx": "tx-secret"}}
    sent = {}
    for consent in ("denied", "granted"):
        relay.handler.received.clear()
        transmission = run(api, body(content=CONTENT, recipients=[{**rcpt, "tracking_consent": consent}], **options))
        (received,) = relay.received
        token = received.message["List-Unsubscribe"].split("/u/")[1].rstrip(">")
        sent[consent] = (transmission, base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    transmission, raw = sent["denied"]
    assert b"ada@example.com" in raw
    for secret in (b"spring-campaign", b"gold-secret", b"tx-secret", b"vip-tag", b"inline"):
        assert secret not in raw
    assert transmission.pk.to_bytes(8, "big") not in raw and str(transmission.pk).encode() not in raw
    granted_transmission, granted = sent["granted"]
    assert b"spring-campaign" in granted and granted_transmission.pk.to_bytes(8, "big") in granted


def test_a_register_denial_wins_then_the_recipient_object_over_the_register(api, relay):
    from consent.services import ConsentWrite, consent_record

    consent_record(writes=[ConsentWrite("ada@example.com", "denied"), ConsentWrite("bob@example.com", "denied"),
                           ConsentWrite("dee@example.com", "granted")])  # fmt: skip
    sent = _sent(api, relay, [{"address": "Ada@Example.com"}, {"address": "bob@example.com", "tracking_consent": "granted"},
                              {"address": "cy@example.com"}, {"address": "dee@example.com", "tracking_consent": "denied"}])  # fmt: skip
    # bob said no in the register: a sender's "granted" for one transmission does not track him
    assert not _tracked(_parts(sent["Ada@Example.com"])) and not _tracked(_parts(sent["bob@example.com"]))
    assert _tracked(_parts(sent["cy@example.com"])) and not _tracked(_parts(sent["dee@example.com"]))


def test_default_denied_tracks_only_recipients_who_granted(api, relay, settings):
    from consent.services import ConsentWrite, consent_record

    settings.ENGAGE_TRACKING_CONSENT_DEFAULT = "denied"
    consent_record(writes=[ConsentWrite("ada@example.com", "granted")])
    sent = _sent(api, relay, [{"address": "ada@example.com"}, {"address": "bob@example.com", "tracking_consent": "granted"},
                              {"address": "cy@example.com"}])  # fmt: skip
    assert _tracked(_parts(sent["ada@example.com"])) and _tracked(_parts(sent["bob@example.com"]))
    assert not _tracked(_parts(sent["cy@example.com"]))


def test_the_register_is_one_query_per_batch(django_assert_num_queries):
    from consent.services import ConsentWrite, consent_record
    from transmissions.generation import prepare, registered_consent
    from transmissions.models import Transmission

    consent_record(writes=[ConsentWrite("a3@example.com", "denied")])
    prepared = prepare(Transmission(id=1, content=CONTENT, options={}, metadata={}, campaign_id="", return_path=""))
    recipients = [{"address": {"email": f"A{i}@example.com"}} for i in range(200)]
    with django_assert_num_queries(1):
        assert registered_consent(prepared, recipients) == {"a3@example.com": "denied"}
    with django_assert_num_queries(1):  # a recipient's "granted" still yields to a register denial
        assert registered_consent(prepared, [{**r, "tracking_consent": "granted"} for r in recipients]) == {
            "a3@example.com": "denied"
        }
    with django_assert_num_queries(0):
        registered_consent(prepared, [{**r, "tracking_consent": "denied"} for r in recipients])


def test_a_bad_tracking_consent_is_a_recipient_error(api):
    response = api.post(
        URL, body(recipients=[{"address": "a@example.com", "tracking_consent": "maybe"}]), format="json"
    )
    error = assert_error(response, 422, "1400")
    assert error["rcpt_to_errors"][0]["code"] == "1300"
    assert "tracking_consent" in error["rcpt_to_errors"][0]["description"]
    response = api.post(URL, body(recipients=[{"address": "a@example.com", "tracking_consent": "maybe"},
                                              {"address": "b@example.com", "tracking_consent": "denied"}]), format="json")  # fmt: skip
    assert response.status_code == 200 and response.json()["results"]["total_accepted_recipients"] == 1
