"""The security tester's ``tracking_domain`` finding (HIGH) and the inline-image Content-ID
finding (low), kept as reported and checked the way a recipient sees the message: through
the API and the in-process relay, the HTML read with an HTML parser, List-Unsubscribe split
into its URIs."""

from __future__ import annotations

import base64
import ipaddress
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.helpers import TRACKING_DOMAIN_ATTACKS as TESTER_INPUTS
from tests.helpers import assert_error, kept_bytes
from tests.transmissions.helpers import body, parts, run
from transmissions.models import Transmission

URL = "/api/v1/transmissions"
LINKED = {
    "from": "news@sender.test",
    "subject": "s",
    "html": '<html><body><a href="https://example.com/p">l</a></body></html>',
    "text": "see https://example.com/t",
}
TRACKED = {"open_tracking": True, "click_tracking": True}
IMAGE = base64.b64encode(b"GIF89a").decode()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def tags(html: str, name: str) -> list[dict[str, str | None]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return [dict(attrs) | {"#names": ",".join(n for n, _ in attrs)} for tag, attrs in parser.tags if tag == name]


def list_unsubscribe(message) -> tuple[str, str]:
    """The two URIs of Engage's List-Unsubscribe, asserting there are exactly those two."""
    values = message.get_all("List-Unsubscribe")
    assert values is not None and len(values) == 1
    found = re.fullmatch(r"<([^<>,\s]+)>, <([^<>,\s]+)>", str(values[0]))
    assert found, values[0]
    return found.group(1), found.group(2)


def assert_tracked_on(message, base: str) -> None:
    """Every href and pixel src is a URL under ``base``; List-Unsubscribe is Engage's two."""
    host = urlsplit(base).netloc
    html, text = parts(message)
    anchors = tags(html, "a")
    assert anchors and all(a["#names"] == "href" for a in anchors), anchors
    for anchor in anchors:
        href = urlsplit(anchor["href"])
        assert (href.scheme, href.netloc) == (urlsplit(base).scheme, host), anchor["href"]
        assert re.fullmatch(r"/f/[A-Za-z0-9_-]+", href.path), anchor["href"]
    pixels = tags(html, "img")
    assert pixels and all(re.fullmatch(rf"{re.escape(base)}/q/[A-Za-z0-9_-]+", pixel["src"]) for pixel in pixels)
    assert re.search(rf"see {re.escape(base)}/f/[A-Za-z0-9_-]+\s*$", text), text
    mailto, unsubscribe = list_unsubscribe(message)
    domain = urlsplit(base).hostname
    try:  # an IP address goes as a domain literal; a host name may end in a digit ("a0")
        domain = f"[{'IPv6:' if ipaddress.ip_address(domain).version == 6 else ''}{domain}]"
    except ValueError:
        pass
    assert mailto == f"mailto:unsubscribe@{domain}?subject=unsubscribe"
    assert re.fullmatch(rf"{re.escape(base)}/u/[A-Za-z0-9_-]+", unsubscribe)


# --- HIGH: tracking_domain -------------------------------------------------------------------


@pytest.mark.parametrize("domain", TESTER_INPUTS)
def test_each_reported_tracking_domain_is_a_422_naming_it_and_nothing_is_sent(api, relay, domain):
    response = api.post(URL, body(content=LINKED, options=TRACKED, tracking_domain=domain), format="json")
    error = assert_error(response, 422, "1300")
    assert error["description"].startswith("tracking_domain:")
    assert Transmission.objects.count() == 0
    assert relay.received == []


@pytest.mark.parametrize("domain", TESTER_INPUTS)
def test_the_pure_payload_check_refuses_them_too(domain):
    from datetime import UTC, datetime

    from engage import errors
    from transmissions.payload import TransmissionInputLimits, transmission_input_parse

    limits = TransmissionInputLimits(10_000, 10_000, 10_000_000, 3600)
    raw = body(content=LINKED, tracking_domain=domain)
    with pytest.raises(errors.InvalidData, match="^tracking_domain: "):
        transmission_input_parse(raw, now=datetime.now(UTC), limits=limits)


@pytest.mark.parametrize(
    ("domain", "base"),
    [
        ("click.brand.test:8443", "http://click.brand.test:8443"),
        ("Bücher.test", "http://xn--bcher-kva.test"),
        ("https://click.brand.test/", "https://click.brand.test"),
    ],
)
def test_a_good_tracking_domain_is_stored_as_written_once_and_every_tracked_url_uses_it(api, relay, domain, base):
    transmission = run(api, body(content=LINKED, options=TRACKED, tracking_domain=domain))
    assert transmission.tracking_domain == base.removeprefix("http://")
    assert_tracked_on(relay.received[0].message, base)


@pytest.mark.parametrize("domain", TESTER_INPUTS)
def test_a_bad_tracking_domain_stored_before_the_check_fails_each_tracked_message_alone(
    api, relay, events, settings, domain
):
    """Rows written before the API checked ``tracking_domain``: the tracked message fails
    with a generation_failure naming it; an untracked transactional one still goes."""
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    for options in (TRACKED, {"open_tracking": False, "click_tracking": False, "transactional": True}):
        response = api.post(URL, body(content=LINKED, options=options), format="json")
        tid = int(response.json()["results"]["id"])
        Transmission.objects.filter(pk=tid).update(tracking_domain=domain)
        for chunk in transmission_start_generation(transmission_id=tid):
            chunk_send(transmission_id=tid, chunk=chunk, token="test")
    (received,) = relay.received
    assert "List-Unsubscribe" not in received.message and 'href="https://example.com/p"' in received.data.decode()
    (failure,) = [e for e in events() if e["type"] == "generation_failure"]
    assert failure["reason"].startswith("tracking_domain ") and "cannot be used" in failure["reason"]


def test_a_malformed_base_url_is_still_escaped_in_html_and_refused_in_list_unsubscribe(api, relay, events, settings):
    """Defence in depth: were ENGAGE_TRACKING_BASE_URL to slip past the start-up check, the
    HTML keeps one href attribute per link and List-Unsubscribe is never written with it."""
    settings.ENGAGE_TRACKING_BASE_URL = 'http://x" onmouseover="alert(1)'
    settings.ENGAGE_LIST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    run(api, body(content=LINKED, options={**TRACKED, "transactional": True}))
    run(api, body(content=LINKED, options=TRACKED))
    (received,) = relay.received
    html, _text = parts(received.message)
    (anchor,) = tags(html, "a")
    assert anchor["#names"] == "href" and anchor["href"].startswith('http://x" onmouseover="alert(1)/f/')
    pixels = tags(html, "img")
    assert pixels and all("onmouseover" not in pixel["#names"] for pixel in pixels)
    (failure,) = [e for e in events() if e["type"] == "generation_failure"]
    assert "List-Unsubscribe URI" in failure["reason"]


def test_a_sublink_is_percent_encoded_and_cannot_add_an_attribute(api, relay):
    html = (
        '<html><body><a href="https://example.com/p" data-msys-sublink="a&quot; onclick=&quot;x y/b">l</a>'
        '<a href="https://example.com/q" data-msys-sublink="deals/today">m</a></body></html>'
    )
    text = 'see https://example.com/t[[data-msys-sublink="x<y>"]] end'
    run(api, body(content={**LINKED, "html": html, "text": text}, options=TRACKED))
    message = relay.received[0].message
    html_out, text_out = parts(message)
    first, second = tags(html_out, "a")
    assert first["#names"] == second["#names"] == "href"
    assert re.fullmatch(r"http://[^/]+/f/a%22%20onclick%3D%22x%20y/b/[A-Za-z0-9_-]+", first["href"])
    assert re.fullmatch(r"http://[^/]+/f/deals/today/[A-Za-z0-9_-]+", second["href"])
    assert re.search(r"see http://\S+/f/x%3Cy%3E/[A-Za-z0-9_-]+ end", text_out)


_HOSTISH = st.sampled_from(
    ["a.test", "Bücher.test", "x", "127.0.0.1", "[::1]", "t.example", "-a", "a..b", "xn--bcher-kva.test", ""]
)
_JUNK = st.sampled_from(
    ['"', "'", "<", ">", ",", " ", "\r\n", "\t", "/", "?", "#", "@", ":", "%0a", "\\", "&", "\u2028", "\x00", "\x85"]
)
_DOMAINS = st.one_of(
    st.text(max_size=40),
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["", "http://", "HTTPS://"]), _HOSTISH, st.sampled_from(["", ":8443", ":1", "/", ":0"])
        ),
    ),
    st.builds(
        "".join,
        st.lists(
            st.one_of(_HOSTISH, _JUNK, st.sampled_from(["http://", "https://", "javascript://", ":8443", "/"])),
            max_size=6,
        ),
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(domain=_DOMAINS)
def test_any_tracking_domain_is_refused_or_every_tracked_url_is_http_on_its_host(api, relay, domain):
    from mailcore.domains import tracking_base_url_from

    relay.received.clear()
    response = api.post(URL, body(content=LINKED, options=TRACKED, tracking_domain=domain), format="json")
    event(f"answer {response.status_code}")
    if response.status_code in (400, 422):
        return
    assert response.status_code == 200, response.content
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    tid = int(response.json()["results"]["id"])
    for chunk in transmission_start_generation(transmission_id=tid):
        chunk_send(transmission_id=tid, chunk=chunk, token="test")
    from django.conf import settings as django_settings

    base = tracking_base_url_from(django_settings.ENGAGE_TRACKING_BASE_URL, domain)
    assert urlsplit(base).scheme in ("http", "https") and urlsplit(base).hostname
    (received,) = relay.received
    assert_tracked_on(received.message, base)


# --- low: inline image names are Content-IDs -------------------------------------------------


@pytest.mark.parametrize("name", ["i>\r\nX-Evil: 2‹", "a<b", "my image.png", "x>", ".png", "é.png"])
def test_an_inline_image_name_that_is_not_a_content_id_is_a_422_naming_it(api, name):
    images = [
        {"type": "image/gif", "name": "ok.gif", "data": IMAGE},
        {"type": "image/gif", "name": name, "data": IMAGE},
    ]
    response = api.post(URL, body(content={**LINKED, "inline_images": images}), format="json")
    error = assert_error(response, 422, "1300")
    assert error["description"].startswith("content.inline_images[1].name:")


def test_the_pure_payload_check_refuses_a_bad_inline_image_name_too():
    from engage import errors
    from transmissions.payload import _files

    with pytest.raises(errors.InvalidData, match=r"^content\.inline_images\[0\]\.name: "):
        _files([{"type": "image/gif", "name": "i>\r\nX-Evil: 2‹", "data": IMAGE}], "inline_images")
    assert _files([{"type": "image/gif", "name": "a b<c>.gif", "data": IMAGE}], "attachments")  # a file name


def test_a_content_id_name_goes_out_as_written_and_a_stored_bad_one_fails_that_message(api, relay, events):
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    images = [{"type": "image/gif", "name": "logo.v2@brand.test", "data": IMAGE}]
    run(api, body(content={**LINKED, "inline_images": images}))
    message = relay.received[0].message
    (image,) = [part for part in message.walk() if part.get_content_type() == "image/gif"]
    assert image["Content-ID"] == "<logo.v2@brand.test>"
    response = api.post(URL, body(content={**LINKED, "inline_images": images}), format="json")
    tid = int(response.json()["results"]["id"])
    stored = Transmission.objects.get(pk=tid)
    stored.content["inline_images"][0]["name"] = "i>\r\nX-Evil: 2‹"
    stored.save(update_fields=["content"])
    for chunk in transmission_start_generation(transmission_id=tid):
        chunk_send(transmission_id=tid, chunk=chunk, token="test")
    assert len(relay.received) == 1
    (failure,) = [e for e in events() if e["type"] == "generation_failure"]
    assert "inline image name" in failure["reason"] and "Content-ID" in failure["reason"]


def _kept_after(api, relay, contents: list[dict], *, forget: bool) -> int:
    """Bytes this process still holds (``tests.helpers.kept_bytes``) after sending a
    transmission of each of ``contents`` (after one sent first, unmeasured: what the first
    allocates for good), the relayed copies dropped; with ``forget``, the prepared
    transmissions too."""
    from transmissions.generation import prepared_cache_clear

    def send() -> None:
        for content in contents:
            run(api, body(content=content, options=TRACKED))
        relay.received.clear()
        if forget:
            prepared_cache_clear()

    run(api, body(content=LINKED, options=TRACKED))
    return kept_bytes(send)


def _sublinked(index: int, characters: int) -> dict:
    sublink = f"s{index}/" + "a" * characters
    html = f'<html><body><a href="https://example.com/p" data-msys-sublink="{sublink}">l</a></body></html>'
    return {**LINKED, "html": html}


def test_a_worker_keeps_nothing_of_a_long_sublink_once_its_transmission_is_forgotten(api, relay):
    """A ``data-msys-sublink`` is bounded only by the content's size: each of four 512 KiB
    sublinks was kept by the worker's sublink cache, with its encoded form, for the process's
    life (1,024 of them held gigabytes). They are sent all the same, and not kept."""
    run(api, body(content=_sublinked(0, 512 * 1024), options=TRACKED))
    (anchor,) = tags(parts(relay.received[-1].message)[0], "a")
    assert re.fullmatch(r"http://[^/]+/f/s0/a{524288}/[A-Za-z0-9_-]+", anchor["href"])
    kept = _kept_after(api, relay, [_sublinked(index, 512 * 1024) for index in range(4, 8)], forget=True)
    assert kept < 512 * 1024, f"{kept / 2**20:.1f} MiB kept after four 512 KiB sublinks"


def test_a_worker_keeps_a_bounded_amount_of_prepared_content(api, relay, monkeypatch):
    """A worker keeps the transmissions it prepared (the last 32), but no more than
    ``_CACHE_CHARS`` of content between them: 32 of 50 MiB each held gigabytes. With the
    bound at 1 Mi characters, eight transmissions of 512 KiB keep about two of them."""
    from transmissions import generation

    monkeypatch.setattr(generation, "_CACHE_CHARS", 1024 * 1024)
    kept = _kept_after(api, relay, [_sublinked(index, 512 * 1024) for index in range(8)], forget=False)
    assert kept < 4 * 1024 * 1024, f"{kept / 2**20:.1f} MiB kept after eight transmissions of 512 KiB"
