"""Generation and hand-off at the service level: real PostgreSQL, Redis and an in-process
SMTP relay, no worker (tests/e2e runs the worker)."""

from __future__ import annotations

import base64
import itertools
import re
from email.header import decode_header, make_header

import pytest

from tests.transmissions.helpers import CONTENT, URL, body, parts, run
from transmissions.models import Message, MessageState, Transmission, TransmissionState


def test_a_message_is_built_sent_and_recorded(api, relay, events):
    transmission = run(
        api,
        body(content={**CONTENT, "reply_to": "reply@sender.test", "headers": {"CC": "cc@example.com", "X-Tag": "v"}}),
    )
    assert transmission.state == TransmissionState.SUCCESS
    assert transmission.num_generated == 1 and transmission.num_failed_gen == 0
    assert transmission.generation_end_time is not None
    assert len(relay.received) == 1
    received = relay.received[0]
    assert received.mail_from == "news@sender.test"
    assert received.rcpt_tos == ["Jo@Example.com"]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == "News <news@sender.test>"
    assert message["To"] == "Jo <Jo@Example.com>"
    assert message["Subject"] == "Hello World"
    assert message["Reply-To"] == "reply@sender.test"
    assert message["CC"] == "cc@example.com"
    assert message["X-Tag"] == "v"
    assert message["Date"]
    stored = Message.objects.get(transmission=transmission)
    assert stored.state == MessageState.DELIVERED
    assert message["Message-ID"] == f"<{stored.message_id}@sender.test>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<mailto:[^>]+>, <http://[^>]+/u/[A-Za-z0-9_-]+>", message["List-Unsubscribe"])
    html, text = parts(message)
    assert "data-msys" not in html
    assert re.search(r'href="http://[^"]+/f/[A-Za-z0-9_-]+"', html)
    assert re.search(r'<img src="http://[^"]+/q/[A-Za-z0-9_-]+" width="1" height="1" border="0" alt="">', html)
    assert re.search(r"http://\S+/f/[A-Za-z0-9_-]+", text)
    assert "example.com" not in text
    kinds = [event["type"] for event in events()]
    assert kinds == ["injection", "delivery"]
    for event in events():
        assert event["transmission_id"] == str(transmission.id)
        assert event["message_id"] == stored.message_id
        assert event["campaign_id"] == "camp"
        assert event["template_id"] == "inline"
        assert event["rcpt_to"] == "jo@example.com"
        assert event["raw_rcpt_to"] == "Jo@Example.com"
        assert event["recipient_domain"] == "example.com"
        assert event["rcpt_meta"] == {"tx": "1", "shared": "rcpt"}
        assert event["rcpt_tags"] == ["t1"]
        assert event["friendly_from"] == "news@sender.test"
        assert event["subject"] == "Hello World"
        assert event["transactional"] is False


def test_the_click_token_carries_the_original_url(api, relay, events):
    from django.conf import settings

    from tracking.signing import tracking_signer

    run(api, body())
    html, _text = parts(relay.received[0].message)
    token = re.search(r'href="[^"]+/f/([A-Za-z0-9_-]+)"', html).group(1)
    decoded = tracking_signer().decode(
        token, now=int(__import__("time").time()), max_age=settings.ENGAGE_TRACKING_LINK_EXPIRY
    )
    assert decoded.target_url == "https://example.com/offer?u=World"
    assert decoded.link_name == "offer"
    assert decoded.rcpt_tags == ["t1"]


@pytest.mark.parametrize(
    ("header_to_case", "expected"),
    [
        ({"address": "Plain <p@example.com>"}, "Plain <p@example.com>"),
        ({"address": "p@example.com"}, "p@example.com"),
        (
            {"address": {"email": "p@example.com", "name": "Pat", "header_to": "list@example.com"}},
            "Pat <list@example.com>",
        ),
        (
            {"address": {"email": "p@example.com", "name": "Pat", "header_to": "The List <list@example.com>"}},
            "The List <list@example.com>",
        ),
        ({"address": {"email": "p@example.com", "header_to": "list@example.com"}}, "list@example.com"),
    ],
)
def test_to_header_follows_the_recipient_rules(api, relay, header_to_case, expected):
    run(api, body(recipients=[header_to_case]))
    assert relay.received[0].message["To"] == expected
    assert relay.received[0].rcpt_tos == ["p@example.com"]


def test_transactional_mail_has_no_list_unsubscribe(api, relay):
    run(api, body(options={"transactional": True}))
    assert relay.received[0].message["List-Unsubscribe"] is None


def test_non_ascii_headers_are_rfc2047_encoded(api, relay):
    run(api, body(content={**CONTENT, "subject": "Grüße {{name}}", "from": {"email": "a@sender.test", "name": "Zoë"}}))
    raw = relay.received[0].data.decode("ascii")
    assert "=?utf-8?" in raw
    message = relay.received[0].message
    assert str(make_header(decode_header(message["Subject"]))) == "Grüße World"
    assert "Zoë" in str(message["From"])


def test_attachments_and_inline_images(api, relay):
    png = base64.b64encode(b"\x89PNG fake").decode()
    content = {
        **CONTENT,
        "attachments": [{"type": "application/pdf", "name": "a.pdf", "data": base64.b64encode(b"%PDF").decode()}],
        "inline_images": [{"type": "image/png", "name": "logo", "data": png}],
    }
    run(api, body(content=content))
    message = relay.received[0].message
    assert message.get_content_type() == "multipart/mixed"
    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo>"
    assert image.get_content() == b"\x89PNG fake"
    pdf = next(p for p in message.walk() if p.get_content_type() == "application/pdf")
    assert pdf.get_filename() == "a.pdf"


def test_inline_css(api, relay):
    html = "<html><head><style>p { color: red }</style></head><body><p>x</p></body></html>"
    run(api, body(content={**CONTENT, "html": html}, options={"inline_css": True, "open_tracking": False}))
    out, _text = parts(relay.received[0].message)
    assert 'style="color: red' in out


def test_a_render_error_fails_one_recipient_and_the_others_go(api, relay, events):
    content = {**CONTENT, "text": "{{ n + 1 }}", "html": None}
    data = body(
        content={k: v for k, v in content.items() if v is not None},
        substitution_data={},
        recipients=[
            {"address": "bad@example.com", "substitution_data": {"n": "not a number"}},
            {"address": "good@example.com", "substitution_data": {"n": 1}},
        ],
    )
    transmission = run(api, data)
    assert [r.rcpt_tos for r in relay.received] == [["good@example.com"]]
    assert transmission.num_failed_gen == 1 and transmission.num_generated == 1
    failure = [e for e in events() if e["type"] == "generation_failure"]
    assert len(failure) == 1 and failure[0]["rcpt_to"] == "bad@example.com"
    assert transmission.state == TransmissionState.SUCCESS


def test_a_5xx_answer_is_a_bounce_with_a_class(api, relay, events):
    relay.handler.answers = ["550 5.1.1 no such user"]
    transmission = run(api, body())
    assert Message.objects.get(transmission=transmission).state == MessageState.BOUNCED
    bounce = [e for e in events() if e["type"] == "bounce"]
    assert len(bounce) == 1
    assert bounce[0]["bounce_class"] == "10"
    assert bounce[0]["error_code"] == "550"
    assert "no such user" in bounce[0]["reason"]
    assert transmission.state == TransmissionState.SUCCESS


def test_a_4xx_answer_is_a_delay_then_the_retry_delivers(api, relay, events):
    from transmissions.sending import message_retry

    relay.handler.answers = ["451 4.3.0 try later"]
    transmission = run(api, body())
    message = Message.objects.get(transmission=transmission)
    assert message.state == MessageState.DELAYED
    assert [e["type"] for e in events()] == ["injection", "delay"]
    assert events()[1]["bounce_class"] == "70"
    assert message_retry(message_pk=message.pk, token="retry") == ("delivered", 2)
    assert message_retry(message_pk=message.pk, token="again") == ("skipped", 0)
    assert [e["type"] for e in events()] == ["injection", "delay", "delivery"]
    assert len(relay.received) == 1


def test_the_relay_being_down_gives_messages_back_and_raises(api, settings, events):
    from tests.transmissions.relay import free_port
    from transmissions.delivery import RelayUnavailable, relay_reset
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    settings.ENGAGE_RELAY_URL = f"smtp://127.0.0.1:{free_port()}"
    relay_reset()
    tid = int(api.post(URL, body(), format="json").json()["results"]["id"])
    (chunk,) = transmission_start_generation(transmission_id=tid)
    with pytest.raises(RelayUnavailable):
        chunk_send(transmission_id=tid, chunk=chunk, token="t")
    assert list(Message.objects.filter(transmission_id=tid).values_list("state", flat=True)) == ["queued"]
    assert [e["type"] for e in events()] == ["delay"]
    relay_reset()


def test_sent_messages_are_never_resent_and_stale_claims_are(api, relay, settings):
    """What a redelivered chunk task does after its worker was killed mid-chunk."""
    from django.utils import timezone

    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    settings.ENGAGE_SEND_CLAIM_TIMEOUT = 60
    recipients = [{"address": f"r{i}@example.com"} for i in range(6)]
    tid = int(api.post(URL, body(recipients=recipients), format="json").json()["results"]["id"])
    (chunk,) = transmission_start_generation(transmission_id=tid)
    rows = list(Message.objects.filter(transmission_id=tid).order_by("id"))
    long_ago = timezone.now() - timezone.timedelta(minutes=5)
    # r0, r1: handed off before the kill; r2: claimed by the dead worker (stale); r3: claimed
    # by a live worker (fresh); r4, r5: still queued.
    Message.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(state="delivered")
    Message.objects.filter(pk=rows[2].pk).update(state="sending", claimed_by="dead", claimed_at=long_ago)
    Message.objects.filter(pk=rows[3].pk).update(state="sending", claimed_by="alive", claimed_at=timezone.now())
    chunk_send(transmission_id=tid, chunk=chunk, token="redelivered")
    assert sorted(r.rcpt_tos[0] for r in relay.received) == ["r2@example.com", "r4@example.com", "r5@example.com"]
    assert Transmission.objects.get(pk=tid).state == TransmissionState.GENERATING  # r3 still in flight


def test_recovery_requeues_stale_claims(api, settings):
    from django.utils import timezone

    from transmissions.sending import stale_claims_recover
    from transmissions.services import transmission_start_generation

    tid = int(api.post(URL, body(), format="json").json()["results"]["id"])
    transmission_start_generation(transmission_id=tid)
    Message.objects.filter(transmission_id=tid).update(
        state="sending", claimed_by="dead", claimed_at=timezone.now() - timezone.timedelta(hours=1)
    )
    pairs, generating = stale_claims_recover()
    assert (tid, 0) in pairs and tid in generating
    assert Message.objects.get(transmission_id=tid).state == MessageState.QUEUED


def test_a_delayed_message_whose_retry_was_lost_is_found_and_retried_once(api, relay, settings, events):
    from django.utils import timezone

    from transmissions.sending import delayed_orphans_find, message_retry

    settings.ENGAGE_RETRY_MAX_SECONDS, settings.ENGAGE_SEND_CLAIM_TIMEOUT = 60, 60
    relay.handler.answers = ["451 4.3.0 try later", "451 4.3.0 try later"]
    transmission = run(api, body(recipients=[{"address": "a@example.com"}, {"address": "b@example.com"}]))
    lost, recent = Message.objects.filter(transmission=transmission).order_by("id")
    assert {lost.state, recent.state} == {MessageState.DELAYED}
    Message.objects.filter(pk=lost.pk).update(finished_at=timezone.now() - timezone.timedelta(minutes=5))

    assert delayed_orphans_find() == [lost.pk]  # the other one's retry is not overdue yet
    assert message_retry(message_pk=lost.pk, token="recovered")[0] == "delivered"
    assert message_retry(message_pk=lost.pk, token="a-late-original")[0] == "skipped"
    assert delayed_orphans_find() == []


def test_a_stored_template_is_compiled_with_its_version(api, relay, events):
    response = api.post("/api/v1/templates", {"id": "t1", "published": True, "content": CONTENT}, format="json")
    assert response.status_code == 200
    transmission = run(api, body(content={"template_id": "t1"}))
    assert transmission.template_version != ""
    assert relay.received[0].message["Subject"] == "Hello World"
    assert {e["template_id"] for e in events()} == {"t1"}
    assert {e["template_version"] for e in events()} == {transmission.template_version}


def test_email_rfc822_is_substituted_and_sent_without_a_to_header(api, relay):
    rfc = "From: a@sender.test\nSubject: hi {{name}}\n\nbody {{name}}\n"
    run(api, body(content={"email_rfc822": rfc}))
    message = relay.received[0].message
    assert message["Subject"] == "hi World"
    assert message["To"] is None
    assert message.get_content().strip() == "body World"


# --- precedence: transmission > template > server default, for opens and clicks ------------

LEVELS = (True, False, None)


def _expected(tx, tpl, default):
    for value in (tx, tpl, default):
        if value is not None:
            return value
    return True


@pytest.mark.parametrize(("tx", "tpl", "default"), list(itertools.product(LEVELS, LEVELS, (True, False))))
def test_tracking_precedence_shows_in_the_sent_message(api, relay, settings, tx, tpl, default):
    settings.ENGAGE_OPEN_TRACKING = default
    settings.ENGAGE_CLICK_TRACKING = not default  # independent chains: use opposite defaults
    tpl_options = {key: value for key, value in (("open_tracking", tpl), ("click_tracking", tpl)) if value is not None}
    response = api.post(
        "/api/v1/templates",
        {"id": "prec", "published": True, "content": CONTENT, "options": tpl_options},
        format="json",
    )
    assert response.status_code == 200, response.content
    tx_options = {key: value for key, value in (("open_tracking", tx), ("click_tracking", tx)) if value is not None}
    run(api, body(content={"template_id": "prec"}, options=tx_options))
    html, text = parts(relay.received[0].message)
    want_open = _expected(tx, tpl, default)
    want_click = _expected(tx, tpl, not default)
    assert bool(re.search(r"/q/[A-Za-z0-9_-]+", html)) is want_open
    assert ("https://example.com/offer?u=World" not in html) is want_click
    assert ("https://example.com/text" not in text) is want_click
    assert "data-msys" not in html
    assert (html.count("/q/") == 2) is want_open  # initial_open follows open_tracking


@pytest.mark.parametrize(
    "address",
    ["jo@example.com", "Jo.Doe+tag@sub.example.com", "a_b-c@x.io", '"jo doe"@example.com', "jo@[127.0.0.1]",
     "Jo <jo@example.com>", "", "<>", "jo@", "jö@example.com", "a,b@example.com"],
)  # fmt: skip
def test_the_fast_smtp_address_path_agrees_with_smtplib(address):
    import smtplib

    from transmissions.delivery import _plain

    if _plain(address):
        assert smtplib.quoteaddr(address) == f"<{address}>"


@pytest.mark.parametrize("data", [b"a\nb\n", b"a\r\nb", b".a\n.b\r\n..c\rd", b"x", b"\n.\n"])
def test_dot_stuffing_gives_crlf_lines_doubled_dots_and_the_end_marker(data):
    import re

    from transmissions.delivery import _dot_stuffed

    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    expected = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"
    assert _dot_stuffed(data) == expected
