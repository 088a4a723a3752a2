"""Recipients as a person types or uploads them in the admin's list form, turned into the
recipient objects of ``POST /api/v1/recipient-lists`` (SPEC B §3.2), each with the row it came
from so that an error can name it. Text in, objects out; the API's rules
(``recipient_lists.payload``, ``normalize_recipient``) judge the objects afterwards.

What the API's JSON parser refuses (``engage.api.parsers``: NaN, numbers it cannot hold, a NUL
or a lone surrogate in a string, nesting too deep) is refused here too, in either form, naming
the line or entry: PostgreSQL could not store it.

Two forms, told apart by the first character:

- a JSON array (starts with ``[``): SparkPost's recipient objects, as the API takes them;
- CSV, one recipient a line: ``email`` or ``Name <email>``, optionally ``email,name``. A first
  line naming the columns (one of them ``email``) makes any other column a substitution data
  key of each recipient: ``email,name,first_name,plan``. Column names are compared without
  case (``email,Email`` is refused: one address would be lost). Blank lines are skipped; in a
  named column an empty cell is left out.

:func:`read_recipients` reads CSV a row at a time, so that a caller judging each recipient as
it comes never holds the whole upload as raw objects (see ``recipient_lists.admin``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engage import errors
from engage.api.parsers import bad_string, find_bad_string, loads

EMAIL, NAME = "email", "name"


class UploadError(ValueError):
    """The text cannot be read as recipients; ``str()`` names the line."""


@dataclass(frozen=True, slots=True)
class Upload:
    """Recipient objects in order, and for each the 1-based line (CSV) or entry (JSON) it
    came from, and what that number counts (``"line"`` or ``"entry"``)."""

    recipients: list[Any]
    rows: list[int]
    unit: str


def recipients_from_text(text: str) -> Upload:
    """The recipients ``text`` holds (see the module). Raises :class:`UploadError`."""
    unit, rows = read_recipients(text)
    recipients: list[Any] = []
    numbers: list[int] = []
    for number, recipient in rows:
        recipients.append(recipient)
        numbers.append(number)
    return Upload(recipients, numbers, unit)


def read_recipients(text: str) -> tuple[str, Iterator[tuple[int, Any]]]:
    """``(unit, rows)``: what a row number counts (``"line"``, ``"entry"``) and each
    recipient with its 1-based row number, in order. A JSON array is parsed at once (its
    errors raised here), CSV as ``rows`` is consumed (its errors raised then). Raises
    :class:`UploadError` naming the line or entry."""
    if text.lstrip().startswith("["):
        return "entry", _from_json(text)
    return "line", _from_csv(text)


_ENTRY_PATH = re.compile(r"^\[([0-9]+)\]\.?")


def _from_json(text: str) -> Iterator[tuple[int, Any]]:
    try:
        data = loads(text)
    except errors.InvalidJson as exc:
        said = exc.description.removeprefix("Problems parsing request as json: ")
        found = _ENTRY_PATH.match(said)
        if found is None:
            raise UploadError(f"not valid JSON: {said}") from None
        raise UploadError(f"entry {int(found[1]) + 1}: {said[found.end() :].removeprefix(': ')}") from None
    if not isinstance(data, list):
        raise UploadError("a JSON value must be an array of recipients")
    return iter(enumerate(data, start=1))


def _header(cells: list[str]) -> list[str] | None:
    names = [cell.lower() for cell in cells]
    if EMAIL not in names:
        return None
    for number, cell in enumerate(cells, start=1):
        if (problem := bad_string(cell)) is not None:
            raise UploadError(f"line 1: the name of column {number} {problem}")
    if any(not cell for cell in cells) or len(set(names)) != len(names):
        raise UploadError(
            "line 1: the column names must be present and different from each other (whatever their case)"
        )
    return [name if name in (EMAIL, NAME) else cell for name, cell in zip(names, cells, strict=True)]


def _from_csv(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    first = True
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if first:
                first = False
                header = _header(cells)
                if header is not None:
                    continue
            line = reader.line_num
            recipient = _plain(cells, line) if header is None else _named(header, cells, line)
            if (problem := find_bad_string(recipient, "")) is not None:
                raise UploadError(f"line {line}: {problem}".encode("utf-8", "backslashreplace").decode("utf-8"))
            yield line, recipient
    except csv.Error as exc:
        raise UploadError(f"line {reader.line_num}: {exc}") from None


def _plain(cells: list[str], line: int) -> Any:
    if any(cells[2:]):
        raise UploadError(f"line {line}: more than two columns; name them in a first line (email,name,...)")
    email = cells[0]
    name = cells[1] if len(cells) > 1 else ""
    return {"address": {"email": email, "name": name}} if name else {"address": email}


def _named(header: list[str], cells: list[str], line: int) -> Any:
    if len(cells) > len(header) and any(cells[len(header) :]):
        raise UploadError(f"line {line}: more cells than the {len(header)} columns named in line 1")
    values = dict(zip(header, cells, strict=False))
    address: dict[str, Any] = {"email": values.pop(EMAIL, "")}
    if values.get(NAME):
        address[NAME] = values[NAME]
    values.pop(NAME, None)
    recipient: dict[str, Any] = {"address": address}
    data = {key: value for key, value in values.items() if value}
    if data:
        recipient["substitution_data"] = data
    return recipient
