"""The webhook address policy on its own (analytics/targets.py): no database, no network;
the resolver is replaced where a name is resolved."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from analytics.targets import AllowList, TargetRefused, address_class, ipv4_parse, target_parse, target_resolve

NOBODY = AllowList()


def _resolver(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Make socket.getaddrinfo answer ``answers`` by host; returns the hosts asked, in order."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://127.0.0.1.:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://10.0.0.1/", "private"),
        ("http://012.0.0.1/", "private"),  # octal 10.0.0.1
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://3232235777/", "private"),  # 192.168.1.1
        ("http://[fc00::1]/", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "private"),  # 240/4 is in Python's private list before reserved
        ("http://100.64.0.1/", "reserved"),  # shared address space (RFC 6598)
        ("http://255.255.255.255/", "private"),
    ],
)
def test_internal_address_literals_are_refused_in_every_spelling(url, kind):
    target = target_parse(url)
    assert address_class(target.literal) == kind
    with pytest.raises(TargetRefused, match=f"is an? {kind} address"):
        target_resolve(target, allowed=NOBODY, timeout=1)


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "https://[2606:4700:4700::1111]/", "http://134744072/", "http://[64:ff9b::808:808]/"]
)
def test_public_address_literals_pass_without_asking_the_resolver(url, monkeypatch):
    asked = _resolver(monkeypatch, {})
    target = target_parse(url)
    assert target_resolve(target, allowed=NOBODY, timeout=1) == [target.literal]
    assert asked == []


def test_legacy_ipv4_spellings_mean_the_address_a_resolver_gives_them():
    assert target_parse("http://2130706433:8080/x?y=1").host == "127.0.0.1"
    assert target_parse("http://0x7f.1/").literal == ipaddress.ip_address("127.0.0.1")
    assert target_parse("http://0x7f.0.0.1/").literal == ipaddress.ip_address("127.0.0.1")
    assert ipv4_parse("1.2.65535") == ipaddress.ip_address("1.2.255.255")
    assert ipv4_parse("example.com") is None and ipv4_parse("1.2.3.com") is None
    for bad in ("1.2.3.256", "99999999999", "1.2.3.4.5", "0x7g.1", "1.2.65536"):
        with pytest.raises(TargetRefused, match="not a valid IPv4 address"):
            ipv4_parse(bad)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///x", "http://x:99999/"]
)
def test_only_http_and_https_urls_with_a_host_are_targets(url):
    with pytest.raises(TargetRefused):
        target_parse(url)


def test_a_name_resolving_to_loopback_is_refused_without_saying_where_it_points(monkeypatch):
    asked = _resolver(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
    with pytest.raises(TargetRefused) as refused:
        target_resolve(target_parse("https://hooks.example.com/in"), allowed=NOBODY, timeout=1)
    assert "'hooks.example.com' resolves to a loopback address" in str(refused.value)
    assert "127.0.0.1" not in str(refused.value)
    assert asked == ["hooks.example.com"]


def test_one_internal_address_among_public_ones_refuses_the_name(monkeypatch):
    _resolver(monkeypatch, {"mixed.example.com": ["93.184.216.34", "::ffff:10.1.2.3"]})
    with pytest.raises(TargetRefused, match="resolves to a private address"):
        target_resolve(target_parse("http://mixed.example.com/"), allowed=NOBODY, timeout=1)


def test_public_names_resolve_once_to_the_addresses_to_connect_to(monkeypatch):
    asked = _resolver(monkeypatch, {"xn--bcher-kva.example": ["93.184.216.34", "2606:2800:220:1::"]})
    target = target_parse("https://BÜCHER.example./hook")
    assert (target.host, target.port, target.request_path) == ("xn--bcher-kva.example", 443, "/hook")
    got = target_resolve(target, allowed=NOBODY, timeout=1)
    assert got == [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2606:2800:220:1::")]
    assert asked == ["xn--bcher-kva.example"]


def test_unresolvable_names_are_refused(monkeypatch):
    _resolver(monkeypatch, {})
    with pytest.raises(TargetRefused, match="could not be resolved"):
        target_resolve(target_parse("http://nowhere.invalid/"), allowed=NOBODY, timeout=1)


def test_a_resolver_that_hangs_is_given_up_after_the_timeout(monkeypatch):
    import threading

    release, answered = threading.Event(), threading.Event()

    def hung_getaddrinfo(*args, **kwargs):
        release.wait(10)
        answered.set()
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hung_getaddrinfo)
    try:
        with pytest.raises(TargetRefused, match="could not be resolved in time"):
            target_resolve(target_parse("http://slow.example.com/"), allowed=NOBODY, timeout=0.3)
        assert not answered.is_set()  # refused while the resolver still hung, not after it answered
    finally:
        release.set()


def test_allow_list_admits_its_cidr_blocks_on_any_port_and_host_port_pairs_on_that_port(monkeypatch):
    allowed = AllowList.parse(["10.0.0.0/8", " [::1]:9000", "hooks.lan:8080", "127.0.0.1:7000", ""])
    _resolver(monkeypatch, {"hooks.lan": ["192.168.7.7"], "other.lan": ["192.168.7.7"], "tenner.lan": ["10.9.9.9"]})

    def passes(url):
        try:
            return bool(target_resolve(target_parse(url), allowed=allowed, timeout=1))
        except TargetRefused:
            return False

    assert passes("http://10.2.3.4:1234/") and passes("http://[::ffff:10.2.3.4]/") and passes("http://tenner.lan/")
    assert passes("http://[::1]:9000/") and not passes("http://[::1]:9001/")
    assert (
        passes("http://hooks.lan:8080/")
        and not passes("http://hooks.lan:8081/")
        and not passes("http://other.lan:8080/")
    )
    assert (
        passes("http://127.0.0.1:7000/") and passes("http://2130706433:7000/") and not passes("http://127.0.0.1:7001/")
    )
    assert not passes("http://192.168.0.1/")


@pytest.mark.parametrize("entry", ["localhost", "hooks.lan:http", "10.0.0.0/33", "[::1]", ":80", "a b:80"])
def test_allow_list_entries_that_are_neither_cidr_nor_host_port_are_named_in_the_error(entry):
    with pytest.raises(ValueError, match="ENGAGE_WEBHOOK_ALLOWED_TARGETS: '.*' is neither"):
        AllowList.parse([entry])
