"""The tracking-domain rule and the List-Unsubscribe URI check (``mailcore.domains``, pure)."""

from __future__ import annotations

import pytest

from mailcore.domains import list_unsubscribe_uri_problem, tracking_base_url_from, tracking_domain_normalize
from tests.helpers import TRACKING_DOMAIN_ATTACKS

#: What the security tester sent (issue 10 follow-up); each was accepted and delivered.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("click.example.com", "click.example.com"),
        ("Click.Example.COM", "click.example.com"),
        ("click.brand.example:8443", "click.brand.example:8443"),
        ("click.example.com/", "click.example.com"),
        ("localhost:8080", "localhost:8080"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example:80", "xn--bcher-kva.example:80"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("[::1]:8000", "[::1]:8000"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("https://t.example.com", "https://t.example.com"),
        ("HTTP://T.example.com:81/", "http://t.example.com:81"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("a.b:080", "a.b:80"),
    ],
)
def test_it_accepts_a_host_with_an_optional_port_or_scheme_and_writes_it_one_way(value, expected):
    assert tracking_domain_normalize(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        *TRACKING_DOMAIN_ATTACKS,
        "javascript:alert(1)",
        "ftp://t.example.com",
        "https://",
        "https://t.example.com/path",
        "https://t.example.com//",
        "t.example.com/path",
        "t.example.com?x=1",
        "t.example.com#f",
        "user@t.example.com",
        "https://user:pw@t.example.com",
        "t.example.com:0",
        "t.example.com:65536",
        "t.example.com:",
        "t.example.com:http",
        ":8080",
        "a:b:c",
        "t example.com",
        " t.example.com",
        "t.example.com\n",
        "t.example.com\u2028",
        "t.exa\x00mple.com",
        "t.example.com\x85",
        "-t.example.com",
        "t-.example.com",
        "t..example.com",
        "t.example.com.",
        "t_1.example.com",
        "a" * 64 + ".example.com",
        ("a" * 63 + ".") * 4 + "com",
        "1.2.3",
        "999.1.1.1",
        "[::1",
        "[::1]x",
        "[not-v6]:80",
        "[fe80::1%eth0]",
        "[fe80::1%25eth0]:80",
        "::1",
        "t.example.com'",
        "t.example.com<",
        "t.example.com>",
        "t.example.com,",
        "t.example.com\\x",
        "t.example\uff0ecom\uff0f",  # full-width dot is fine, a full-width solidus maps to "/"
        "xn--zz.example",
    ],
)
def test_it_refuses_anything_else_saying_why(value):
    with pytest.raises(ValueError) as raised:
        tracking_domain_normalize(value)
    assert str(raised.value)


def test_the_base_url_keeps_the_configured_scheme_unless_the_domain_brings_one():
    base = "https://track.example.com"
    assert tracking_base_url_from(base, "") == base
    assert tracking_base_url_from(base + "/", "  ") == base
    assert tracking_base_url_from(base, "click.brand.example:8443") == "https://click.brand.example:8443"
    assert tracking_base_url_from(base, "http://other.example/") == "http://other.example"
    assert tracking_base_url_from(base, " bücher.example ") == "https://xn--bcher-kva.example"
    for value in TRACKING_DOMAIN_ATTACKS:
        with pytest.raises(ValueError):
            tracking_base_url_from(base, value)


@pytest.mark.parametrize(
    "uri",
    [
        "mailto:unsubscribe@track.example.com?subject=unsubscribe",
        "mailto:unsubscribe@[127.0.0.1]?subject=unsubscribe",
        "https://track.example.com/u/AbC-_9",
        "http://[::1]:8000/u/x",
    ],
)
def test_a_list_unsubscribe_uri_without_delimiters_passes(uri):
    assert list_unsubscribe_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        'mailto:unsubscribe@x" onmouseover="alert(1)?subject=unsubscribe',
        "mailto:unsubscribe@a.test>, <mailto:attacker@evil.test??subject=unsubscribe",
        "javascript://x.test/%0aalert(document.domain)///u/x",
        "http://evil.test/\r\nX-Evil: 1/u/x",
        "http://a.test/u/x\t",
        "http://a.test/u/x,y",
        "data:text/html,x",
    ],
)
def test_a_list_unsubscribe_uri_with_a_delimiter_space_control_or_other_scheme_is_refused(uri):
    assert "List-Unsubscribe URI" in list_unsubscribe_uri_problem(uri)
