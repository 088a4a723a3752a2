"""Recipient normalization and validation (SPEC B §3.2): PURE, shared with transmissions.

``normalize_recipient`` turns one raw recipient (as a client sent it, in a recipient list
or inline in a transmission) into the one stored shape::

    {"address": {"email": str, "name": str?, "header_to": str?},
     "return_path": str, "tags": [str, ...], "metadata": {...}, "substitution_data": {...}}

``name`` and ``header_to`` are present only when given. ``return_path`` is ``""`` when not
given (SparkPost shows it that way). Null values mean "not given"; unknown keys are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from engage import errors

MAX_TAGS = 10
MAX_EMAIL_LENGTH = 254

_NAME_ADDR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$", re.DOTALL)
# Dot-atom local part (RFC 5321 §4.1.2) or a quoted string.
_LOCAL = re.compile(
    r"""^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+)*|"(?:[^"\\\r\n]|\\.)*")$"""
)
_DOMAIN_LITERAL = re.compile(r"^\[[^\[\]\s]+\]$")


def split_address(value: str) -> tuple[str, str]:
    """``"Name <addr>"`` → ``("Name", "addr")``; ``"addr"`` → ``("", "addr")``. Names lose quotes and spaces."""
    match = _NAME_ADDR.match(value)
    if not match:
        return "", value.strip()
    name = match.group("name").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    return name, match.group("email").strip()


def is_valid_email(email: str) -> bool:
    """A practical RFC 5321 check: one ``@``, a dot-atom or quoted local part, a host name or literal."""
    if not email or len(email) > MAX_EMAIL_LENGTH:
        return False
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(local) > 64:
        return False
    if not _LOCAL.match(local):
        return False
    if _DOMAIN_LITERAL.match(domain):
        return True
    labels = domain.split(".")
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(ch.isalnum() or ch == "-" for ch in label):
            return False
    return True


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
        header_to = address.get("header_to")
        if header_to is not None and not isinstance(header_to, str):
            return None, _bad(index, "address.header_to must be a string")
    else:
        return None, _bad(index, "address must be a string or an object")
    if not email:
        return None, errors.RequiredFieldMissing(f"recipients[{index}]: address.email is required for each recipient")
    if not is_valid_email(email):
        return None, _bad(index, f"'{email}' is not a valid email address")

    normalized_address: dict[str, str] = {"email": email}
    if name and name.strip():
        normalized_address["name"] = name.strip()
    if header_to and header_to.strip():
        normalized_address["header_to"] = header_to.strip()

    return_path = raw.get("return_path")
    if return_path is None:
        return_path = ""
    elif not isinstance(return_path, str):
        return None, _bad(index, "return_path must be a string")

    tags = raw.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None, _bad(index, "tags must be an array of strings")

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
