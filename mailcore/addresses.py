"""Email addresses (PURE: the standard library and ``email-validator``, no Django, no I/O).

:func:`address_problem` is the one rule for an address Engage sends to or writes in a header
(RFC 5321 §4.1.2, RFC 5322 §3.4.1, RFC 6531, IDNA 2008; SPEC B §3.2), and
:func:`split_address` the one reading of ``"Name <addr>"``. Recipients (``recipient_lists``),
transmissions, templates and the header writer all use them. :func:`mailbox_key` is the one
spelling under which the suppression list and the tracking consent register store and match
an address.
"""

from __future__ import annotations

import functools
import re
import socket
import unicodedata
from typing import TypedDict

import idna
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_LOCAL_PART_OCTETS",
    "address_problem",
    "is_valid_email",
    "mailbox_key",
    "split_address",
]

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_OCTETS = 64

_NAME_ADDR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$", re.DOTALL)
# An address email-validator always accepts with the options below (tests check the two
# agree): an ASCII dot-atom, host name labels, a top-level label of letters. ~30x faster.
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_PLAIN = re.compile(
    rf"[{_ATEXT}]{{1,64}}(?:\.[{_ATEXT}]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}"
)
_PLAIN_LOCAL = re.compile(rf"[{_ATEXT}]{{1,64}}(?:\.[{_ATEXT}]+)*")
# A local part as an RFC 5322 quoted-string (§3.2.4), and the dot-atom it may stand for (UTF-8
# atext as RFC 6532 §3.2 allows).
_QUOTED_LOCAL = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_UTF8_ATEXT = rf"\u0080-\U0010ffff{_ATEXT}"  # the range first: _ATEXT ends with a literal "-"
_DOT_ATOM_LOCAL = re.compile(rf"[{_UTF8_ATEXT}]+(?:\.[{_UTF8_ATEXT}]+)*")
_SPECIAL_USE = frozenset(name for name in SPECIAL_USE_DOMAIN_NAMES if name != "test")


class _ValidatorOptions(TypedDict):
    """The keyword arguments of every ``validate_email`` call here."""

    check_deliverability: bool
    allow_smtputf8: bool
    allow_quoted_local: bool
    allow_domain_literal: bool
    globally_deliverable: bool
    test_environment: bool


_VALIDATOR_OPTIONS: _ValidatorOptions = {
    "check_deliverability": False,  # no DNS at the API: the relay finds out
    "allow_smtputf8": True,  # non-ASCII local parts go with SMTPUTF8 (transmissions.delivery)
    "allow_quoted_local": True,
    "allow_domain_literal": False,  # a@[10.0.0.5]: SparkPost refuses them, and they reach internal hosts
    "globally_deliverable": False,  # intranet host names without a dot
    "test_environment": True,  # .test (RFC 2606) domains
}


def split_address(value: str) -> tuple[str, str]:
    """``"Name <addr>"`` → ``("Name", "addr")``; ``"addr"`` → ``("", "addr")``. Names lose quotes and spaces."""
    match = _NAME_ADDR.match(value)
    if not match:
        return "", value.strip()
    name = match.group("name").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    return name, match.group("email").strip()


def address_problem(email: str) -> str | None:
    """Why ``email`` is not an address Engage can send to, or None when it is.

    The syntax of RFC 5321 §4.1.2 / RFC 5322 §3.4.1, with UTF-8 local parts (RFC 6531) and
    internationalized domains (IDNA 2008), checked by ``email-validator`` without DNS; at
    most 254 characters, 64 octets before the ``@``; special-use domains (``localhost``, ``.invalid``, ``.local``,
    ``.onion``, ``.arpa``; RFC 6761) are refused, ``.test`` is allowed; so are domain literals
    (``a@[10.0.0.5]``, ``b@[IPv6:::1]``), as SparkPost refuses them.
    """
    if not isinstance(email, str) or not email:
        return "it is empty"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"it is longer than {MAX_EMAIL_LENGTH} characters"
    local, _at, domain = email.rpartition("@")
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL_PART_OCTETS:
        return f"the part before the @-sign is longer than {MAX_LOCAL_PART_OCTETS} octets (RFC 5321 §4.5.3.1.1)"
    if _PLAIN.fullmatch(email) is not None:
        if "--" not in domain and domain.rpartition(".")[2].lower() not in _SPECIAL_USE:
            return None
    elif _PLAIN_LOCAL.fullmatch(local) is not None and not domain.isascii():
        # An internationalized domain costs ~120 µs of IDNA work per address; recipients
        # share domains, so each is checked once (tests check this agrees with the whole).
        problem, ascii_length = _domain_problem(domain)
        if problem is None and len(local) + 1 + ascii_length > MAX_EMAIL_LENGTH:
            return f"it is longer than {MAX_EMAIL_LENGTH} characters once its domain is IDNA-encoded"
        return problem
    if _is_ip_spelled_as_name(domain):
        return "the part after the @-sign is an IP address written as a host name; use a domain name"
    try:
        validate_email(email, **_VALIDATOR_OPTIONS)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _is_ip_spelled_as_name(domain: str) -> bool:
    """``127.0.0.1``, ``2130706433``, ``0x7f000001``, ``127.1``: host names a relay's resolver
    (``inet_aton``) reads as an IPv4 address, so mail would go to that address; and any domain
    whose top-level label is all digits, which no domain name has (RFC 3696 §2)."""
    top = domain.rstrip(".").rpartition(".")[2]
    if top.isascii() and top.isdigit():
        return True
    try:
        socket.inet_aton(domain)
    except (OSError, ValueError, UnicodeError):
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _domain_problem(domain: str) -> tuple[str | None, int]:
    """What email-validator says of ``domain`` after a plain local part, and the length of the
    domain's ASCII (A-label) form."""
    try:
        valid = validate_email(f"a@{domain}", **_VALIDATOR_OPTIONS)
    except EmailNotValidError as exc:
        return str(exc), 0
    return None, len(valid.ascii_domain or domain)


def is_valid_email(email: str) -> bool:
    """True when :func:`address_problem` finds nothing wrong with ``email``."""
    return address_problem(email) is None


def mailbox_key(address: str) -> str:
    """The one canonical spelling of a mailbox, under which the suppression list and the
    tracking consent register store and match it (SPEC A.5: addresses match lower-cased):
    stripped; a quoted local part that needs no quotes unquoted (``"bob"@x`` and
    ``"b\\ob"@x`` are ``bob@x``: RFC 5322 §3.2.4, a quoted-string means its content, and
    relays send the dot-atom), one that does with only the quoted-pairs it needs
    (``"a\\ b"@x`` is ``"a b"@x``); the local part NFC-normalised and lower-cased (``ö`` typed as ``o`` + U+0308 is
    ``ö``); the domain as its IDNA A-label, lower-cased (``bücher.example`` and
    ``XN--BCHER-KVA.example`` are both ``xn--bcher-kva.example``; IDNA 2008 with the UTS 46
    mapping, as email-validator reads domains). A domain that is not a valid IDN is kept
    lower-cased (NFC), so every string has a key. Total: never raises.

    Not :func:`mailcore.msys_api.address_key`: that one deduplicates the copies of one SMTP
    message and keeps local parts exact (RFC 5321 §2.4); a suppression matches them without case.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return _nfc_lower(domain)
    if local[:1] == '"':
        local = _unquoted(local)
    return f"{_nfc_lower(local)}@{_domain_key(domain)}"


def _unquoted(local: str) -> str:
    """A quoted-string local part in its shortest form: its content when that is a dot-atom,
    else quoted again with only ``\\`` and ``"`` escaped. Anything else is returned as is."""
    quoted = _QUOTED_LOCAL.fullmatch(local)
    if quoted is None:
        return local
    content = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
    if _DOT_ATOM_LOCAL.fullmatch(content):
        return content
    return '"' + content.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nfc_lower(text: str) -> str:
    if text.isascii():
        return text.lower()
    # lower() can undo NFC ("İ" → "i" + U+0307): normalise on both sides of it.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())


@functools.lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str:
    """``domain``'s A-label form, lower-cased; lower-cased (NFC) when it is not a valid IDN."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return _nfc_lower(domain)
