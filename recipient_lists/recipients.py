"""Recipient normalization and validation (SPEC B §3.2), shared with transmissions.

``normalize_recipient`` turns one raw recipient (as a client sent it, in a recipient list
or inline in a transmission) into the one stored shape::

    {"address": {"email": str, "name": str?, "header_to": str?},
     "return_path": str, "tags": [str, ...], "metadata": {...}, "substitution_data": {...},
     "tracking_consent": "granted" | "denied"}

``name``, ``header_to`` and ``tracking_consent`` (SPEC A.5: this recipient's tracking consent,
over the register and the default) are present only when given. ``return_path`` is ``""`` when not
given (SparkPost shows it that way). Null values mean "not given"; unknown keys are ignored.

``address.email``, ``header_to`` and ``return_path`` must be email addresses
(``mailcore.addresses.address_problem``); a recipient with one that is not is rejected alone, in
``rcpt_to_errors`` (422 / 1300 naming the index and the field). So is one whose
``substitution_data`` has a reserved key (SPEC B §4.2, ``mailcore.language.reserved_key_problem``).
"""

from __future__ import annotations

from typing import Any

from engage import errors
from mailcore.addresses import address_problem, split_address
from mailcore.consent import VALUES as CONSENT_VALUES
from mailcore.language import reserved_key_problem

MAX_TAGS = 10
#: ``address`` as a string (``"Name <addr>"``), a display name, ``header_to``, one tag:
#: the longest each may be, in characters (the declarations in ``recipient_lists.schemas``
#: document these same numbers).
MAX_ADDRESS_CHARS = 1024
MAX_NAME_CHARS = 1024
MAX_TAG_CHARS = 64


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
    email: object  # any JSON value until checked; a str below
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

    consent = raw.get("tracking_consent")
    if consent is not None and consent not in CONSENT_VALUES:
        return None, _bad(index, f"tracking_consent must be one of: {', '.join(CONSENT_VALUES)}")

    normalized = {
        "address": normalized_address,
        "return_path": return_path.strip(),
        "tags": tags[:MAX_TAGS],
        "metadata": metadata,
        "substitution_data": substitution_data,
    }
    if consent is not None:
        normalized["tracking_consent"] = consent
    return normalized, None


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
            assert recipient is not None  # no error: a recipient
            accepted.append(recipient)
    return accepted, error_dicts, rejected
