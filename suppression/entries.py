"""Suppression entries as clients send them (SPEC A.5, B §11.2-11.3), turned into the writes
they mean: ``(recipient in stored form, type, description or None)``.

- The address: ``recipient`` or the legacy ``email`` (``recipient`` wins when both are given),
  a valid address (``mailcore.addresses.address_problem``), stored and matched under
  ``mailcore.addresses.mailbox_key`` (lower-cased, NFC local part, A-label domain).
- The types: ``type`` when given; else each legacy boolean that is ``true`` (``false`` changes
  nothing, so an entry whose booleans are all ``false`` writes nothing); neither → an error.
- ``description``: at most 1,024 bytes of UTF-8; None when not given (an existing entry keeps
  its own).

Every problem is ``errors.InvalidInput`` (400 / 1300) saying where.
"""

from __future__ import annotations

from dataclasses import dataclass

from engage import errors
from engage.api.fields import byte_length
from mailcore.addresses import address_problem, mailbox_key
from suppression.models import MAX_DESCRIPTION_BYTES
from suppression.schemas import EntryFields, EntryIn

#: At most this many problems are named in one bulk error.
MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class EntryWrite:
    recipient: str
    type: str
    description: str | None


def _shown(value: str) -> str:
    return value if len(value) <= 64 else value[:64] + "..."


def recipient_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a suppression entry's address, or None."""
    problem = address_problem(raw.strip())
    return None if problem is None else f"'{_shown(raw)}' is not a valid email address: {problem}"


def path_recipient(raw: str) -> str:
    """The address named in ``/suppression-list/{recipient}``, stored form; 400 / 1300 when it
    is not an address (python-sparkpost's ``/suppression-list/None``)."""
    problem = recipient_problem(raw)
    if problem is not None:
        raise errors.InvalidInput(f"The address in the path is not valid: {problem}")
    return mailbox_key(raw)


def _types(fields: EntryFields) -> tuple[str, ...] | None:
    """The types the entry suppresses; None when it names none at all."""
    if fields.type is not None:
        return (fields.type,)
    if fields.transactional is None and fields.non_transactional is None:
        return None
    return tuple(
        name
        for name, flag in (("transactional", fields.transactional), ("non_transactional", fields.non_transactional))
        if flag
    )


def _problem(fields: EntryFields) -> str | None:
    if fields.description is not None and byte_length(fields.description) > MAX_DESCRIPTION_BYTES:
        return f"description must be at most {MAX_DESCRIPTION_BYTES} bytes"
    if _types(fields) is None:
        return "Must supply a suppression type: type ('transactional' or 'non_transactional') or the booleans"
    return None


def _writes(recipient: str, fields: EntryFields) -> list[EntryWrite]:
    return [EntryWrite(recipient, name, fields.description) for name in _types(fields) or ()]


def single_writes(recipient: str, fields: EntryFields) -> list[EntryWrite]:
    """The writes of ``PUT /suppression-list/{recipient}`` (``recipient`` already stored form)."""
    problem = _problem(fields)
    if problem is not None:
        raise errors.InvalidInput(problem)
    return _writes(recipient, fields)


def bulk_writes(entries: list[EntryIn]) -> list[EntryWrite]:
    """The writes of a bulk PUT, in order (duplicates kept: the service lets the last win).
    Raises one InvalidInput naming the count and the first problems."""
    writes: list[EntryWrite] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        raw = entry.recipient if entry.recipient is not None else entry.email
        problem = "recipient is required" if raw is None else recipient_problem(raw) or _problem(entry)
        if problem is not None:
            problems.append(f"recipients[{index}]: {problem}")
        elif not problems:
            writes.extend(_writes(mailbox_key(raw), entry))
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + ("; ..." if len(problems) > MAX_PROBLEMS_SHOWN else "")
        raise errors.InvalidInput(f"PUT body contains {len(problems)} invalid or malformed recipient(s): {shown}")
    return writes
