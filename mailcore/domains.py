"""The tracking-domain rule and the URLs Engage writes into messages (PURE: the standard
library and ``idna`` only, no Django, no I/O).

A per-transmission ``tracking_domain`` (SPEC A.2, B §1.1) becomes the start of every tracked
link, open pixel and List-Unsubscribe URL of the transmission, so it is one of two forms and
nothing else:

- ``host[:port]``: a host name (dot-separated labels of 1-63 letters, digits and inner
  hyphens, at most 253 characters, not all-numeric at the end: RFC 1123 §2.1, RFC 3696 §2;
  a non-ASCII name is taken as IDNA and written as its A-label, RFC 5890), an IPv4 address
  or a bracketed IPv6 address; the port 1-65535. The scheme comes from
  ``ENGAGE_TRACKING_BASE_URL``.
- ``http://host[:port]`` or ``https://host[:port]``: the same host, with its own scheme.

One trailing ``/`` is allowed; any other path, a query, a fragment, userinfo (``user@``),
whitespace or a control character is refused. :func:`tracking_domain_normalize` is the one
place this is decided: the API edge (``transmissions/schemas.py``, ``transmissions/payload.py``)
and generation (``tracking/signing.py``) both call it.

:func:`list_unsubscribe_uri_problem` is the last check before a URI goes between ``<`` and
``>`` in List-Unsubscribe (RFC 2369 §2: no ``<``, ``>``, ``,``, whitespace or control
character may appear inside the angle brackets).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import idna

__all__ = [
    "TRACKING_DOMAIN_FORMS",
    "list_unsubscribe_uri_problem",
    "tracking_base_url_from",
    "tracking_domain_normalize",
]

#: How the accepted forms are described in errors and in the OpenAPI document.
TRACKING_DOMAIN_FORMS = "a host name with an optional port (click.example.com[:8443]) or http(s)://host[:port]"

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_REFUSED = re.compile(r"[\s\x00-\x1f\x7f-\x9f\"'<>\\^`{|}]")
_URI_REFUSED = re.compile(r"[\s\x00-\x1f\x7f-\x9f<>,\"]")


def host_normalize(host: str) -> str:
    """``host`` as written in a URL (A-label, lower case), or ValueError saying why not."""
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:  # no zone id: it means nothing off this machine
            raise ValueError("an IPv6 address must be written in brackets without a zone: [2001:db8::1]")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{host[:100]!r} is not an IPv6 address") from None
    if not host:
        raise ValueError("the host is empty")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    name = host
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise ValueError(f"{host[:100]!r} is not a valid internationalized domain name") from None
    name = name.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{host[:100]!r} is not a valid host name")
    if "xn--" in name:
        try:
            idna.decode(name)
        except (idna.IDNAError, UnicodeError, ValueError):
            raise ValueError(f"{host[:100]!r} holds an A-label that is not valid IDNA") from None
    return name


@lru_cache(maxsize=256)
def tracking_domain_normalize(value: str) -> str:
    """``value`` in its one written form (``host[:port]`` or ``scheme://host[:port]``, host as
    an A-label in lower case, no trailing slash); ``""`` for an empty value.

    Raises ``ValueError`` with a sentence naming what is wrong; callers prefix the field
    name. Leading and trailing spaces are the caller's to strip.
    """
    if not value:
        return ""
    if _REFUSED.search(value):
        raise ValueError(f"must be {TRACKING_DOMAIN_FORMS}, without spaces, quotes or control characters")
    scheme = ""
    rest = value
    if "://" in value:
        scheme, _, rest = value.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"must be {TRACKING_DOMAIN_FORMS}; the scheme {scheme[:20]!r} is not http or https")
    rest = rest.removesuffix("/")
    for char, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment"), ("@", "a user name")):
        if char in rest:
            raise ValueError(f"must be {TRACKING_DOMAIN_FORMS}, without {what}")
    host, port = rest, ""
    if rest.startswith("["):
        end = rest.find("]")
        if end != -1 and end + 1 < len(rest):
            host, sep, port = rest[: end + 1], rest[end + 1], rest[end + 2 :]
            if sep != ":":
                raise ValueError(f"must be {TRACKING_DOMAIN_FORMS}")
    elif ":" in rest:
        host, _, port = rest.partition(":")
    if (port or rest.endswith(":")) and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        raise ValueError(f"the port {port[:20]!r} is not a number in 1-65535")
    written = host_normalize(host) + (f":{int(port)}" if port else "")
    return f"{scheme}://{written}" if scheme else written


def tracking_base_url_from(base_url: str, tracking_domain: str) -> str:
    """The ``scheme://host[:port]`` tracked URLs start with: ``base_url`` (the configured
    ``ENGAGE_TRACKING_BASE_URL``, checked at start-up) when ``tracking_domain`` is empty; else
    the normalized domain with its own scheme, or with the scheme of ``base_url``.

    Raises ``ValueError`` (from :func:`tracking_domain_normalize`) for a malformed domain.
    """
    domain = tracking_domain_normalize(tracking_domain.strip())
    if not domain:
        return base_url.rstrip("/")
    if "://" in domain:
        return domain
    scheme = base_url.partition("://")[0].lower() if "://" in base_url else "http"
    return f"{scheme}://{domain}"


def list_unsubscribe_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot go between ``<`` and ``>`` in List-Unsubscribe (RFC 2369 §2), or
    None: it must be a ``mailto:`` or ``http(s)://`` URI without ``<``, ``>``, ``,``, ``"``,
    whitespace or control characters."""
    if not uri.startswith(("mailto:", "http://", "https://")):
        return f"the List-Unsubscribe URI {uri[:200]!r} is not a mailto: or http(s):// URI"
    if _URI_REFUSED.search(uri):
        return f"the List-Unsubscribe URI {uri[:200]!r} holds a character RFC 2369 does not allow there"
    return None
