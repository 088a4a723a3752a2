"""Where an outbound webhook POST may connect (SPEC B §8; issue 10, "Webhooks cannot reach
internal hosts"). No Django: every input is an argument.

A target URL is parsed once (``target_parse``: http/https only; IPv4 literals in every
spelling a resolver accepts, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, are
read as the address they mean, as the WHATWG URL standard's IPv4 parser does), resolved once
(``target_resolve``), and **every** resolved address is checked: an address that is loopback,
private, link-local, multicast, unspecified, reserved or otherwise not globally routable
(RFC 6890 special-purpose registries, as Python's ``ipaddress`` knows them; an IPv4 address
embedded in IPv6, ``::ffff:a.b.c.d``, 6to4, NAT64, is judged as that IPv4 address) refuses
the target unless the allow-list (``AllowList``) admits it. The caller then connects to
one of the checked addresses and never resolves the name again, so a DNS answer that changes
between check and connect (rebinding) cannot redirect the connection.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(ValueError):
    """The target may not be connected to; ``str()`` says why, without any address that a
    hostname resolved to (that would disclose internal DNS)."""


@dataclass(frozen=True)
class Target:
    """A parsed target URL. ``host`` is lower case, an IDNA A-label for names, the
    canonical text of ``literal`` for an IP literal (no brackets); ``request_path``
    is path plus query, at least ``/``."""

    scheme: str
    host: str
    port: int
    request_path: str
    literal: IPAddress | None


# --- classification --------------------------------------------------------------------
def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_class(ip: IPAddress) -> str | None:
    """The kind of non-public address ``ip`` is: ``"unspecified"``, ``"loopback"``,
    ``"link-local"``, ``"multicast"``, ``"private"`` or ``"reserved"`` (anything else not
    globally routable, e.g. 100.64.0.0/10); None for a public address. An IPv6 address that
    embeds an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by both."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            found = address_class(embedded)
            if found or any(ip in net for net in _NAT64):
                return found
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved or not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 as the IPv4 address it is (what the allow-list and connect use)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# --- parsing ----------------------------------------------------------------------------
def _ipv4_number(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if digits == "":
        return 0
    allowed = "0123456789abcdefABCDEF"[: 22 if base == 16 else base]
    if not all(c in allowed for c in digits):
        return None
    return int(digits, base)


def ipv4_parse(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host in any legacy spelling means (``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``, ``127.1``: WHATWG URL standard, "IPv4 parser"); None when the host
    does not end in a number (a name). Raises TargetRefused for a host that ends in a
    number but is no valid address (``1.2.3.256``, ``99999999999``)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    if not last or _ipv4_number(last) is None:
        return None
    numbers = [_ipv4_number(p) if p else None for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise TargetRefused(f"'{host}' is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise TargetRefused(f"'{host}' is not a valid IPv4 address")
    value = values[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(values[:-1]))
    return ipaddress.IPv4Address(value)


def _host_parse(raw: str) -> tuple[str, IPAddress | None]:
    """Lower-case host text (IDNA A-label for names) and its IP when it is a literal."""
    host = raw.lower()
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = ipv4_parse(host)
    if literal is not None:
        literal = _canonical(literal)
        return str(literal), literal
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetRefused(f"'{raw}' is not a valid host name") from None
    if not name or any(c in name for c in "%/\\@ "):
        raise TargetRefused(f"'{raw}' is not a valid host name")
    return name, None


def target_parse(url: str) -> Target:
    """Parse an http(s) URL; raises TargetRefused when it is not one or has no usable host
    or port."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid http or https URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise TargetRefused("only http and https URLs with a host may be targets")
    host, literal = _host_parse(parts.hostname)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], path, literal)


# --- the allow-list ---------------------------------------------------------------------
@dataclass(frozen=True)
class AllowList:
    """Targets that may be non-public. ``networks``: any port on an address inside them;
    ``endpoints``: (host, port) pairs, matching the target's host and port as written (a
    name, whatever it resolves to) or, for an IP host, the address connected to."""

    networks: tuple[IPNetwork, ...] = ()
    endpoints: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From ``ENGAGE_WEBHOOK_ALLOWED_TARGETS`` entries: a CIDR block (``10.0.0.0/8``,
        ``::1/128``; a bare address is a /32 or /128) or ``host:port`` (``hooks.lan:8080``,
        ``127.0.0.1:9000``, ``[::1]:9000``). Raises ValueError naming a bad entry."""
        networks: list[IPNetwork] = []
        endpoints: set[tuple[str, int]] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host, sep, port = entry.rpartition(":")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            try:
                if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise TargetRefused(entry)
                name, _ = _host_parse(host)
            except TargetRefused:
                raise ValueError(
                    f"ENGAGE_WEBHOOK_ALLOWED_TARGETS: '{entry}' is neither a CIDR block nor host:port"
                ) from None
            endpoints.add((name, int(port)))
        return cls(tuple(networks), frozenset(endpoints))

    def allows(self, target: Target, ip: IPAddress) -> bool:
        """Whether ``target`` may connect to ``ip`` although it is not public."""
        ip = _canonical(ip)
        return (
            (target.host, target.port) in self.endpoints
            or (str(ip), target.port) in self.endpoints
            or any(ip.version == net.version and ip in net for net in self.networks)
        )


# --- resolution -------------------------------------------------------------------------
def _getaddrinfo(host: str, port: int, timeout: float) -> list[IPAddress]:
    """``socket.getaddrinfo`` bounded by ``timeout`` (it has no timeout of its own: a slow
    resolver would hold the caller, often a web thread, for its full retry schedule)."""
    found: list[list[IPAddress] | BaseException] = []

    def run() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            # An IPv4/IPv6 sockaddr starts with the host as text (typeshed also allows AF_CAN's int).
            found.append([ipaddress.ip_address(cast(str, info[4][0]).split("%", 1)[0]) for info in infos])
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            found.append(exc)

    worker = threading.Thread(target=run, name="webhook-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        raise TargetRefused(f"'{host}' could not be resolved in time")
    if isinstance(found[0], BaseException):
        raise TargetRefused(f"'{host}' could not be resolved") from None
    return found[0]


def target_resolve(target: Target, *, allowed: AllowList, timeout: float) -> list[IPAddress]:
    """The addresses to connect to, in resolver order, each checked (an IP literal is its
    own one address). Raises TargetRefused when the name does not resolve within
    ``timeout`` seconds, or when any address is non-public and not allowed: one bad
    address refuses the whole target, so the connection cannot land on it."""
    if target.literal is not None:
        addresses = [target.literal]
    else:
        addresses = []
        for ip in _getaddrinfo(target.host, target.port, timeout):
            ip = _canonical(ip)
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise TargetRefused(f"'{target.host}' could not be resolved")
    for ip in addresses:
        kind = address_class(ip)
        if kind and not allowed.allows(target, ip):
            verb = "is" if target.literal else "resolves to"
            article = "an" if kind[0] in "aeiou" else "a"
            raise TargetRefused(
                f"'{target.host}' {verb} {article} {kind} address; webhooks may not reach internal hosts"
                " (see ENGAGE_WEBHOOK_ALLOWED_TARGETS)"
            )
    return addresses
