"""Recipient normalization and validation (SPEC B §3.2): PURE, shared with transmissions.

``normalize_recipient`` turns one raw recipient (as a client sent it, in a recipient list
or inline in a transmission) into the one stored shape::

    {"address": {"email": str, "name": str?, "header_to": str?},
     "return_path": str, "tags": [str, ...], "metadata": {...}, "substitution_data": {...}}

``name`` and ``header_to`` are present only when given. ``return_path`` is ``""`` when not
given (SparkPost shows it that way). Null values mean "not given"; unknown keys are ignored.

``address.email``, ``header_to`` and ``return_path`` must be email addresses
(:func:`address_problem`); a recipient with one that is not is rejected alone, in
``rcpt_to_errors`` (422 / 1300 naming the index and the field). So is one whose
``substitution_data`` has a reserved key (SPEC B §4.2, ``templates_app.language.reserved_key_problem``).
"""

from __future__ import annotations

import functools
import re
import socket
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from engage import errors
from templates_app.language import reserved_key_problem

MAX_TAGS = 10
MAX_EMAIL_LENGTH = 254
#: ``address`` as a string (``"Name <addr>"``), a display name, ``header_to``, one tag:
#: the longest each may be, in characters (the declarations in ``recipient_lists.schemas``
#: document these same numbers).
MAX_ADDRESS_CHARS = 1024
MAX_NAME_CHARS = 1024
MAX_TAG_CHARS = 64
MAX_LOCAL_PART_OCTETS = 64

_NAME_ADDR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$", re.DOTALL)
# An address email-validator always accepts with the options below (tests check the two
# agree): an ASCII dot-atom, host name labels, a top-level label of letters. ~30x faster.
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_PLAIN = re.compile(
    rf"[{_ATEXT}]{{1,64}}(?:\.[{_ATEXT}]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}"
)
_PLAIN_LOCAL = re.compile(rf"[{_ATEXT}]{{1,64}}(?:\.[{_ATEXT}]+)*")
_SPECIAL_USE = frozenset(name for name in SPECIAL_USE_DOMAIN_NAMES if name != "test")
_VALIDATOR_OPTIONS = {
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


def _bad(index: int, detail: str) -> errors.EngageError:
    return errors.InvalidData(f"recipients[{index}]: {detail}")


def normalize_recipient(raw: Any, index: int) -> tuple[dict | None, errors.EngageError | None]:
    """One recipient in the stored shape, or ``(None, error)`` naming the index and the field.

    The error is an ``EngageError`` (422 1300 for a wrong type or value, 1400 for a missing
    email); callers put ``error.as_dict()`` in ``rcpt_to_errors`` and carry on.
    """
    if not isinstance(raw, dict):
        return None, _bad(index, "each recipient must be an object")
    address = raw.get("address")
    name = header_to = None
    if address is None:
        return None, errors.RequiredFieldMissing(f"recipients[{index}]: address.email is required for each recipient")
    if isinstance(address, str):
        if len(address) > MAX_ADDRESS_CHARS:
            return None, _bad(index, f"address must be at most {MAX_ADDRESS_CHARS} characters")
        name, email = split_address(address)
    elif isinstance(address, dict):
        email = address.get("email")
        if email is None or (isinstance(email, str) and not email.strip()):
            return None, errors.RequiredFieldMissing(
                f"recipients[{index}]: address.email is required for each recipient"
            )
        if not isinstance(email, str):
            return None, _bad(index, "address.email must be a string")
        email = email.strip()
        name = address.get("name")
        if name is not None and not isinstance(name, str):
            return None, _bad(index, "address.name must be a string")
        if name is not None and len(name) > MAX_NAME_CHARS:
            return None, _bad(index, f"address.name must be at most {MAX_NAME_CHARS} characters")
        header_to = address.get("header_to")
        if header_to is not None and not isinstance(header_to, str):
            return None, _bad(index, "address.header_to must be a string")
        if header_to is not None and len(header_to) > MAX_ADDRESS_CHARS:
            return None, _bad(index, f"address.header_to must be at most {MAX_ADDRESS_CHARS} characters")
    else:
        return None, _bad(index, "address must be a string or an object")
    if not email:
        return None, errors.RequiredFieldMissing(f"recipients[{index}]: address.email is required for each recipient")
    problem = address_problem(email)
    if problem is not None:
        return None, _bad(index, f"address.email '{email}' is not a valid email address: {problem}")

    normalized_address: dict[str, str] = {"email": email}
    if name and name.strip():
        normalized_address["name"] = name.strip()
    if header_to and header_to.strip():
        header_to = header_to.strip()
        problem = address_problem(split_address(header_to)[1])
        if problem is not None:
            return None, _bad(index, f"address.header_to '{header_to}' is not a valid email address: {problem}")
        normalized_address["header_to"] = header_to

    return_path = raw.get("return_path")
    if return_path is None:
        return_path = ""
    elif not isinstance(return_path, str):
        return None, _bad(index, "return_path must be a string")
    elif return_path.strip() and (problem := address_problem(return_path.strip())) is not None:
        return None, _bad(index, f"return_path '{return_path.strip()}' is not a valid email address: {problem}")

    tags = raw.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None, _bad(index, "tags must be an array of strings")
    elif any(len(tag) > MAX_TAG_CHARS for tag in tags[:MAX_TAGS]):
        return None, _bad(index, f"each tag must be at most {MAX_TAG_CHARS} characters")

    metadata = raw.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        return None, _bad(index, "metadata must be an object")

    substitution_data = raw.get("substitution_data")
    if substitution_data is None:
        substitution_data = {}
    elif not isinstance(substitution_data, dict):
        return None, _bad(index, "substitution_data must be an object")
    elif (problem := reserved_key_problem(substitution_data)) is not None:
        return None, _bad(index, problem)

    return (
        {
            "address": normalized_address,
            "return_path": return_path.strip(),
            "tags": tags[:MAX_TAGS],
            "metadata": metadata,
            "substitution_data": substitution_data,
        },
        None,
    )


def normalize_recipients(raw: Any, *, max_errors: int | None = None) -> tuple[list[dict], list[dict], int]:
    """Normalize an array of recipients: ``(accepted, error_dicts[:max_errors], rejected_count)``."""
    if not isinstance(raw, list):
        raise errors.InvalidData("recipients must be an array of recipient objects")
    accepted: list[dict] = []
    error_dicts: list[dict] = []
    rejected = 0
    for index, item in enumerate(raw):
        recipient, error = normalize_recipient(item, index)
        if error is not None:
            rejected += 1
            if max_errors is None or len(error_dicts) < max_errors:
                error_dicts.append(error.as_dict())
        else:
            accepted.append(recipient)
    return accepted, error_dicts, rejected
