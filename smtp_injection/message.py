"""The top-level header block of an injected message, as bytes (SMTP-INJECTION.md §5.5).

Only the header block is read: a full parse costs several times the whole acceptance
(§2.2 "parse only what acceptance needs"). Field boundaries follow RFC 5322 §2.2: a field
runs to the line end not followed by a space or a tab (a fold); the block ends at the first
empty line. Line ends may be CRLF or a lone LF (both are kept as they came); the listener
refuses a header block with a bare CR or LF (:func:`data_problem`) before anything reads it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from mailcore.headers import decode_words

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
# A CR not followed by LF, or an LF not preceded by CR.
_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")


#: The largest header block read (lines, bytes): every field reader here is a Python loop
#: over the lines, run on the listener's event loop, so a header of 1.9 million fields held
#: every other session for 4 s. Real clients stay far below: Nodemailer's RFC 2047
#: ``X-MSYS-API`` is ~110 lines, and the largest header SMTP-INJECTION.md §5.10 allows (256
#: KiB of ``X-MSYS-API``, folded at 76 characters) about 3,500. At the cap, one pass over
#: the fields takes ~12 ms (measured: 10,000 lines 25 ms, process time, loaded machine) and
#: a message gets at most five (read, check, remove, policy view).
MAX_HEAD_LINES = 5_000
MAX_HEAD_BYTES = 1024 * 1024


def data_problem(data: bytes) -> str | None:
    """Why the message ``data`` cannot be accepted as it came, or None: a NUL byte anywhere
    (PostgreSQL stores no U+0000 in text, and RFC 5322 §2.3 forbids it), a header block over
    :data:`MAX_HEAD_LINES` lines or :data:`MAX_HEAD_BYTES` bytes, or a bare CR or LF
    in the header block (:func:`head_split`). The listener reads fields at CRLF and LF, while
    generation also breaks lines at a bare CR: a field behind one (``X-MSYS-API``, ``Bcc``)
    would be hidden from the listener and then sent. ASCII text for a reply."""
    if b"\0" in data:
        return "the message contains a NUL byte"
    head, _rest = head_split(data)
    if len(head) > MAX_HEAD_BYTES or head.count(b"\n") > MAX_HEAD_LINES:
        return f"the header block is over {MAX_HEAD_LINES:,} lines or {MAX_HEAD_BYTES // 1024 // 1024} MiB"
    if _BARE_LINE_END.search(head):
        return "the header block has a bare CR or LF; end every header line with CRLF"
    return None


def head_split(data: bytes) -> tuple[bytes, bytes]:
    """``(header block with its last line end, the rest from the empty line on)``; a message
    with no empty line is all header."""
    match = _END_OF_HEAD.search(data)
    if match is None:
        return data, b""
    cut = match.start() + (2 if data[match.start()] == 0x0D else 1)
    return data[:cut], data[cut:]


# A field name: printable ASCII but the space and the colon (RFC 5322 §2.2, ftext).
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")


@functools.lru_cache(maxsize=4)
def _fields(head: bytes) -> tuple[tuple[bytes, bytes, int, int], ...]:
    """``(name, raw value, start, end)`` of each field, ``head[start:end]`` being the whole
    field with its continuation lines and final line end. A line that is neither a field
    nor a continuation (no colon) is skipped.

    Kept for the last few header blocks read: a message's block is read by three or four
    of the readers below in turn (the header, the names, the fields removed), a pass each,
    on the listener's event loop."""
    return tuple(_fields_read(head))


def _fields_read(head: bytes) -> Iterator[tuple[bytes, bytes, int, int]]:
    lines: list[tuple[int, int]] = []
    position = 0
    while position < len(head):
        newline = head.find(b"\n", position)
        end = len(head) if newline < 0 else newline + 1
        lines.append((position, end))
        position = end
    index = 0
    while index < len(lines):
        start, end = lines[index]
        index += 1
        while index < len(lines) and head[lines[index][0] : lines[index][0] + 1] in (b" ", b"\t"):
            end = lines[index][1]
            index += 1
        name, colon, value = head[start:end].partition(b":")
        name = name.rstrip(b" \t")
        if not colon or _FIELD_NAME.fullmatch(name) is None:
            continue
        yield name, value.rstrip(b"\r\n"), start, end


def header_values(head: bytes, name: str) -> list[str]:
    """Every value of the field ``name`` (any case) as it came after the colon, folds kept,
    decoded as UTF-8 with undecodable bytes as lone surrogates (``surrogateescape``)."""
    wanted = name.lower().encode("ascii")
    return [
        value.decode("utf-8", "surrogateescape") for field, value, _s, _e in _fields(head) if field.lower() == wanted
    ]


def header_names(head: bytes) -> set[str]:
    """The names of ``head``'s fields, lower-cased (ASCII by RFC 5322 §2.2)."""
    return {name.decode("ascii").lower() for name, _value, _start, _end in _fields(head)}


def header_remove(head: bytes, *names: str) -> bytes:
    """``head`` without any field named one of ``names`` (any case), continuation lines included."""
    wanted = {name.lower().encode("ascii") for name in names}
    kept: list[bytes] = []
    position = 0
    for field, _value, start, end in _fields(head):
        if field.lower() in wanted:
            kept.append(head[position:start])
            position = end
    kept.append(head[position:])
    return b"".join(kept)


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def head_fields(head: bytes) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` of every field of ``head`` in order: names as written, values
    unfolded (RFC 5322 §2.2.3: the line break before a space or tab is removed), stripped,
    RFC 2047 words decoded (RFC 2047 §6; ``mailcore.headers.decode_words``: in linear time
    and known charsets alone, where ``email.header`` took seconds on a 1 MiB Subject of
    words and tried to import each unknown charset: an attacker's finding), bytes that are
    not UTF-8 as U+FFFD. What the injection policy is shown
    (``mailcore.smtp_policy.PolicyView.headers``)."""
    return tuple(
        (name.decode("ascii"), decode_words(_FOLD.sub("", value.decode("utf-8", "replace")).strip()))
        for name, value, _start, _end in _fields(head)
    )
