"""Recipients as a person types or uploads them in the admin's list form, turned into the
recipient objects of ``POST /api/v1/recipient-lists`` (SPEC B §3.2), each with the row it came
from so that an error can name it. Pure: text in, objects out; the API's rules
(``recipient_lists.payload``, ``normalize_recipient``) judge the objects afterwards.

Two forms, told apart by the first character:

- a JSON array (starts with ``[``): SparkPost's recipient objects, as the API takes them;
- CSV, one recipient a line: ``email`` or ``Name <email>``, optionally ``email,name``. A first
  line naming the columns (one of them ``email``) makes any other column a substitution data
  key of each recipient: ``email,name,first_name,plan``. Blank lines are skipped; in a named
  column an empty cell is left out.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

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
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UploadError(f"line {exc.lineno}: not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise UploadError("not valid JSON: nested too deeply") from None
        if not isinstance(data, list):
            raise UploadError("a JSON value must be an array of recipients")
        return Upload(data, list(range(1, len(data) + 1)), "entry")
    return _from_csv(text)


def _header(cells: list[str]) -> list[str] | None:
    names = [cell.lower() for cell in cells]
    if EMAIL not in names:
        return None
    if any(not cell for cell in cells) or len(set(cells)) != len(cells):
        raise UploadError("line 1: the column names must be present and different from each other")
    return [name if name in (EMAIL, NAME) else cell for name, cell in zip(names, cells, strict=True)]


def _from_csv(text: str) -> Upload:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    recipients: list[Any] = []
    rows: list[int] = []
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
            if header is None:
                recipients.append(_plain(cells, line))
            else:
                recipients.append(_named(header, cells, line))
            rows.append(line)
    except csv.Error as exc:
        raise UploadError(f"line {reader.line_num}: {exc}") from None
    return Upload(recipients, rows, "line")


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
