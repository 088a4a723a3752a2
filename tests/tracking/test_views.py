"""The tracking endpoints: /q/ open pixel, /f/ click redirect, /u/ List-Unsubscribe."""

from __future__ import annotations

import time

import pytest

from tests.tracking.helpers import MESSAGE, OLD_KEY
from tracking.views import PIXEL_GIF, location_header_value

pytestmark = pytest.mark.usefixtures("event_stream")

HARD_URLS = [
    # (signed target URL, exact Location header expected)
    ("https://example.com/", "https://example.com/"),
    ("https://example.com/a%2Fb?next=%2Fhome%3Fx%3D1", "https://example.com/a%2Fb?next=%2Fhome%3Fx%3D1"),
    ("https://example.com/?a=1&b=2&c=x+y&d=%20%2B", "https://example.com/?a=1&b=2&c=x+y&d=%20%2B"),
    ("https://example.com/page#section-2?not=query", "https://example.com/page#section-2?not=query"),
    ('https://example.com/p?q=a|b&r={x}&s="<>\\^`', 'https://example.com/p?q=a|b&r={x}&s="<>\\^`'),
    ("https://example.com/%E9%zz%", "https://example.com/%E9%zz%"),
    ("http://EXAMPLE.com:8080/Path;p=1?Q=2", "http://EXAMPLE.com:8080/Path;p=1?Q=2"),
    ("https://bücher.example/straße?q=ü#ä", "https://b%C3%BCcher.example/stra%C3%9Fe?q=%C3%BC#%C3%A4"),
    ("https://example.com/a b\tc", "https://example.com/a%20b%09c"),
    ("https://example.com/😀", "https://example.com/%F0%9F%98%80"),
    ("https://example.com/?long=" + "x%2F" * 1000, "https://example.com/?long=" + "x%2F" * 1000),
]


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def _other_key_token() -> str:
    from mailcore.tokens import TokenSigner

    signer = TokenSigner([(9, b"an-unknown-key-0123456789")])
    return signer.for_message(issued_at=int(time.time()), **MESSAGE).click("https://evil.example/", "x")


def test_open_pixel_returns_the_gif_and_records_open(client, tokens, buffered):
    response = client.get(f"/q/{tokens.open('open')}", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA/1.0")
    assert response.status_code == 200
    assert response.content == PIXEL_GIF and len(PIXEL_GIF) == 43
    assert response["Content-Type"] == "image/gif"
    assert response["Cache-Control"] == "no-cache, no-store, must-revalidate"
    [event] = buffered()
    assert event["type"] == "open"
    assert event["ip_address"] == "203.0.113.9" and event["user_agent"] == "UA/1.0"
    assert event["message_id"] == MESSAGE["message_id"] and event["rcpt_meta"] == MESSAGE["rcpt_meta"]


def test_top_pixel_records_initial_open(client, tokens, buffered):
    assert client.get(f"/q/{tokens.open('initial_open')}").status_code == 200
    assert [e["type"] for e in buffered()] == ["initial_open"]


@pytest.mark.parametrize("url", [url for url, _ in HARD_URLS])
def test_click_redirects_to_the_exact_signed_url(client, tokens, buffered, url):
    expected = dict(HARD_URLS)[url]
    response = client.get(f"/f/{tokens.click(url, 'Link')}")
    assert response.status_code == 302
    assert response["Location"] == expected
    assert response.content == b""
    [event] = buffered()
    assert event["type"] == "click" and event["target_link_url"] == url and event["target_link_name"] == "Link"


def test_click_records_the_link_as_written_and_its_position_beside_sparkposts_fields(client, tokens, buffered):
    token = tokens.click("https://x.example/a?id=42", "Raw URL", position=2, written="https://x.example/a?id={{id}}")
    assert client.get(f"/f/{token}")["Location"] == "https://x.example/a?id=42"
    [event] = buffered()
    assert (event["target_link_name"], event["target_link_url"]) == ("Raw URL", "https://x.example/a?id=42")
    assert (event["engage_link_position"], event["engage_link_template_url"]) == (2, "https://x.example/a?id={{id}}")


def test_click_on_a_token_made_without_position_records_no_engage_link_fields(client, tokens, buffered):
    assert client.get(f"/f/{tokens.click('https://x.example/', 'Top')}").status_code == 302
    [event] = buffered()
    assert "engage_link_position" not in event and "engage_link_template_url" not in event


def test_location_keeps_every_header_safe_byte_and_percent_encodes_the_rest():
    url = "".join(chr(b) for b in range(0x21, 0x7F))
    assert location_header_value(url) == url
    assert location_header_value("http://x/\r\nSet-Cookie: a") == "http://x/%0D%0ASet-Cookie:%20a"


def test_click_records_every_field_the_token_carries(client, tokens, buffered):
    client.get(
        f"/f/{tokens.click('https://example.com/x', 'Buy now')}",
        REMOTE_ADDR="198.51.100.7",
        HTTP_USER_AGENT="Mozilla/5.0",
        HTTP_ACCEPT_LANGUAGE="fr-CH, fr;q=0.9",
    )
    [event] = buffered()
    assert event == {
        "type": "click",
        "event_id": event["event_id"],
        "timestamp": event["timestamp"],
        "message_id": "0000632c8b54d53f0a00",
        "transmission_id": "11898458545848322",
        "campaign_id": "spring-sale",
        "template_id": "tpl-1",
        "template_version": "3",
        "rcpt_to": "jo@example.com",
        "raw_rcpt_to": "jo@example.com",
        "rcpt_meta": {"customKey": "customValue", "n": 1},
        "rcpt_tags": ["male", "US"],
        "transactional": False,
        "ip_address": "198.51.100.7",
        "user_agent": "Mozilla/5.0",
        "accept_language": "fr-CH, fr;q=0.9",
        "target_link_name": "Buy now",
        "target_link_url": "https://example.com/x",
    }
    assert event["event_id"].isdigit() and event["timestamp"].endswith("+00:00")


@pytest.mark.parametrize("sublink", ["offers", "deals/2024/spring", "a-b_c.d"])
def test_click_with_a_sublink_redirects(client, tokens, buffered, sublink):
    response = client.get(f"/f/{sublink}/{tokens.click('https://example.com/s', 'S')}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/s"
    assert len(buffered()) == 1


def test_unsubscribe_link_records_click_and_link_unsubscribe(client, tokens, buffered):
    response = client.get(f"/f/{tokens.click('https://example.com/unsub', 'Unsub', unsubscribe=True)}")
    assert response.status_code == 302
    events = buffered()
    assert [e["type"] for e in events] == ["click", "link_unsubscribe"]
    assert events[1]["target_link_url"] == "https://example.com/unsub"
    assert events[0]["event_id"] != events[1]["event_id"]


def test_list_unsubscribe_post_records_list_unsubscribe(client, tokens, buffered):
    response = client.post(
        f"/u/{tokens.open('unsubscribe')}",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    [event] = buffered()
    assert event["type"] == "list_unsubscribe" and event["rcpt_to"] == "jo@example.com"


def test_list_unsubscribe_post_works_without_a_csrf_token(tokens, buffered):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(f"/u/{tokens.open('unsubscribe')}")
    assert response.status_code == 200 and len(buffered()) == 1


def test_list_unsubscribe_get_shows_a_form_and_records_nothing(client, tokens, buffered):
    response = client.get(f"/u/{tokens.open('unsubscribe')}")
    assert response.status_code == 200
    assert b'method="post"' in response.content and b"jo@example.com" in response.content
    assert buffered() == []


def _bad_tokens(tokens) -> dict[str, tuple[str, str]]:
    click = tokens.click("https://example.com/", "L")
    pixel = tokens.open("open")
    return {
        "tampered-click": ("f", _tampered(click)),
        "truncated-click": ("f", click[:-3]),
        "unknown-key-click": ("f", _other_key_token()),
        "open-token-as-click": ("f", pixel),
        "garbage-click": ("f", "AAAA"),
        "tampered-open": ("q", _tampered(pixel)),
        "truncated-open": ("q", pixel[:-1]),
        "click-token-as-open": ("q", click),
        "tampered-unsubscribe": ("u", _tampered(tokens.open("unsubscribe"))),
        "open-token-as-unsubscribe": ("u", pixel),
    }


@pytest.mark.parametrize(
    "case",
    ["tampered-click", "truncated-click", "unknown-key-click", "open-token-as-click", "garbage-click",
     "tampered-open", "truncated-open", "click-token-as-open", "tampered-unsubscribe", "open-token-as-unsubscribe"],
)  # fmt: skip
def test_bad_token_is_404_and_records_nothing(client, tokens, buffered, case):
    prefix, token = _bad_tokens(tokens)[case]
    response = client.post(f"/{prefix}/{token}") if prefix == "u" else client.get(f"/{prefix}/{token}")
    assert response.status_code == 404
    assert "Location" not in response
    assert len(response.content) < 100
    assert buffered() == []


def test_token_signed_with_the_older_key_still_verifies(client, buffered):
    from mailcore.tokens import TokenSigner

    kid, secret = OLD_KEY.split(":", 1)
    old = TokenSigner([(int(kid), secret.encode())]).for_message(issued_at=int(time.time()), **MESSAGE)
    assert client.get(f"/f/{old.click('https://example.com/old', 'L')}").status_code == 302
    assert len(buffered()) == 1


def test_expired_click_still_redirects_and_records_nothing(client, settings, buffered):
    from tracking.signing import tracking_signer

    settings.ENGAGE_TRACKING_LINK_EXPIRY = 3600
    tokens = tracking_signer().for_message(issued_at=int(time.time()) - 3601, **MESSAGE)
    response = client.get(f"/f/{tokens.click('https://example.com/late', 'L', unsubscribe=True)}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/late"
    response = client.get(f"/q/{tokens.open('open')}")
    assert response.status_code == 200 and response.content == PIXEL_GIF
    assert buffered() == []


def test_expired_list_unsubscribe_is_still_recorded(client, settings, buffered):
    from tracking.signing import tracking_signer

    settings.ENGAGE_TRACKING_LINK_EXPIRY = 3600
    tokens = tracking_signer().for_message(issued_at=int(time.time()) - 7200, **MESSAGE)
    assert client.post(f"/u/{tokens.open('unsubscribe')}").status_code == 200
    assert [e["type"] for e in buffered()] == ["list_unsubscribe"]


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_only_get_and_head_on_pixel_and_click(client, tokens, buffered, method):
    for url in (f"/q/{tokens.open('open')}", f"/f/{tokens.click('https://example.com/', 'L')}"):
        response = getattr(client, method)(url)
        assert response.status_code == 405
        assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    assert buffered() == []


def test_head_answers_like_get_but_records_nothing(client, tokens, buffered):
    assert client.head(f"/f/{tokens.click('https://example.com/h', 'L')}")["Location"] == "https://example.com/h"
    assert client.head(f"/q/{tokens.open('open')}").status_code == 200
    assert buffered() == []


def test_x_forwarded_for_is_used_only_when_trusted(client, settings, tokens, buffered):
    url = f"/q/{tokens.open('open')}"
    client.get(url, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.2")
    settings.ENGAGE_TRUST_X_FORWARDED_FOR = True
    client.get(url, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.2")
    assert [e["ip_address"] for e in buffered()] == ["10.0.0.1", "203.0.113.5"]


def test_tracking_hits_make_no_database_query(client, tokens, buffered, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        client.get(f"/q/{tokens.open('open')}")
        client.get(f"/f/{tokens.click('https://example.com/', 'L', unsubscribe=True)}")
        client.post(f"/u/{tokens.open('unsubscribe')}")
    assert len(buffered()) == 4


def test_click_lands_in_postgres_with_all_fields(client, tokens, db, rollup_calls):
    from analytics.landing import events_land
    from tracking.models import Event

    client.get(
        f"/f/deals/{tokens.click('https://example.com/é?a=%2F', 'Deal', unsubscribe=True)}",
        REMOTE_ADDR="198.51.100.7",
        HTTP_USER_AGENT="Mozilla/5.0",
        HTTP_ACCEPT_LANGUAGE="en-us",
    )
    assert events_land(consumer="test") == 2
    rows = {e.type: e for e in Event.objects.all()}
    assert set(rows) == {"click", "link_unsubscribe"}
    click = rows["click"]
    assert (click.message_id, click.transmission_id, click.campaign_id) == (
        "0000632c8b54d53f0a00",
        "11898458545848322",
        "spring-sale",
    )
    assert (click.template_id, click.template_version, click.transactional) == ("tpl-1", "3", False)
    assert (click.rcpt_to, click.raw_rcpt_to, click.recipient_domain) == ("jo@example.com",) * 2 + ("example.com",)
    assert click.rcpt_meta == {"customKey": "customValue", "n": 1} and click.rcpt_tags == ["male", "US"]
    assert (click.ip_address, click.user_agent, click.accept_language) == ("198.51.100.7", "Mozilla/5.0", "en-us")
    assert (click.target_link_name, click.target_link_url) == ("Deal", "https://example.com/é?a=%2F")
    assert click.timestamp.tzinfo is not None and abs(time.time() - click.timestamp.timestamp()) < 60
    assert click.extra == {}
    assert sorted(e["type"] for e in rollup_calls[0]) == ["click", "link_unsubscribe"]
