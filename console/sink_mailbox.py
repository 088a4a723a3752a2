"""The development sink's mailbox: the ``.eml`` files under ``ENGAGE_SINK_DIR`` and an index of
their headers, so the sink's pages list, page and search thousands of messages without
parsing them on every request (issue 15, Deliver 6).

Written by the sink process (``engage/devsink.py`` keeps a :class:`Mailbox` open and calls
:meth:`Mailbox.deliver`), read by the
console's sink pages (``console/views/sink.py``). The standard library only: the sink process
runs without Django.

**Files.** One message is one file named ``<time_ns>-<pid>-<n>.eml``, written whole under a
``.tmp`` name and then renamed, so a reader never sees half a message. It holds the SMTP
envelope as two header fields (``X-Engage-Sink-Mail-From``, ``X-Engage-Sink-Rcpt-To``), then
the message as the relay client sent it. :func:`message_path` is the one check of a name a
request gives (:data:`NAME`: no ``/``, no leading dot, at most 200 characters).

**The index.** ``index.sqlite3`` in the same folder (WAL journal), one row per file: its name,
mtime (ns) and size, and its header summary (:class:`Summary`) with case-folded copies of the
recipient and subject for search. The sink adds the row of each message it receives. Every
reader first brings the index in line with the folder (:meth:`Mailbox.sync`: one ``scandir``
and one query), so files put there by other means (copied in, an older sink, a test) are read
once, header block only; rows of deleted files go; a file whose size or mtime changed is read
again. An index of another schema version, or one SQLite cannot read, is deleted and rebuilt;
one that cannot be written at all (a read-only folder) is built in memory for the request. The
files are the truth: the index can be deleted at any time.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser, HeaderParser
from pathlib import Path
from typing import overload

#: A message file's name as a request may give it: the names the sink writes
#: (``1764531551123456789-4242-0.eml``) and any plain file name ending ``.eml``.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,195}\.eml")
INDEX_NAME = "index.sqlite3"
#: Bumped whenever the table changes: an index of another version is rebuilt from the files.
SCHEMA_VERSION = 1
#: How much of a file is read for its header block; a longer block is cut there.
MAX_HEAD_BYTES = 256 * 1024
#: Longest header value kept in the index (characters); the message page shows them whole.
MAX_FIELD_CHARS = 2000
#: How long a writer waits for another's lock (seconds): the sink and the web workers share it.
BUSY_TIMEOUT = 10.0

_counter = itertools.count()
_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    name TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    from_header TEXT NOT NULL,
    to_header TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    subject_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_newest ON message (mtime_ns DESC, name DESC);
"""
_COLUMNS = ("name", "mtime_ns", "size", "mail_from", "rcpt_to", "from_header", "to_header", "subject", "message_id")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+\s*")
_SUMMARY_HEADERS = ("X-Engage-Sink-Mail-From", "X-Engage-Sink-Rcpt-To", "From", "To", "Subject", "Message-ID")


@dataclass(frozen=True)
class Summary:
    """What a list shows of one message: the envelope (``mail_from``, ``rcpt_to``: the
    addresses joined by ``", "``) and the From, To, Subject and Message-ID header values,
    RFC 2047 words decoded, folds and control characters made single spaces, each cut at
    :data:`MAX_FIELD_CHARS`. A field that is missing is ``""``."""

    mail_from: str = ""
    rcpt_to: str = ""
    from_header: str = ""
    to_header: str = ""
    subject: str = ""
    message_id: str = ""


@dataclass(frozen=True)
class Entry:
    """One indexed message: its file ``name``, ``mtime_ns`` (when the sink kept it, ns since
    the epoch), ``size`` (bytes) and its :class:`Summary`."""

    name: str
    mtime_ns: int
    size: int
    summary: Summary


def _clean(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()[:MAX_FIELD_CHARS]


#: The most of a raw header value the pages decode and show. The stdlib's decoders grow
#: faster than the value: policy.default's header classes took 1.75 GB for a Subject of 16,000
#: encoded words (found by an attacker; 1.4 MB took 23 GB), ``decode_header`` 1 s for it.
SHOWN_HEADER_CHARS = 4000


def _words_decoded(value: str) -> str:
    """A raw header value, cut to :data:`SHOWN_HEADER_CHARS` (then marked with how much more
    there was), with its RFC 2047 words decoded; the raw text when they cannot be (an
    unknown charset, a broken encoded word)."""
    more = len(value) - SHOWN_HEADER_CHARS
    if more > 0:
        value = value[:SHOWN_HEADER_CHARS]
    try:
        shown = str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001  whatever the decoder refuses: the raw text is shown
        shown = value
    return f"{shown} … ({more:,} characters more)" if more > 0 else shown


def _unfolded(value: str) -> str:
    """A raw header value as text: its folds (CRLF or LF before white space) removed, and its
    8-bit bytes (which the parser keeps as surrogate escapes) read as UTF-8, any that are
    not shown as U+FFFD."""
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        value = value.encode("utf-8", "replace").decode("utf-8")
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def header_summary(head: bytes) -> Summary:
    """The :class:`Summary` of a message's header block (``head``: bytes up to the blank
    line; more is harmless). 8-bit text is read as UTF-8. Never raises. ``compat32`` parsing
    and hand decoding: five times faster than ``policy.default``'s header classes, which an
    index of thousands of files rebuilt in one request needs."""
    message = HeaderParser(policy=policy.compat32).parsestr(head.decode("utf-8", "replace"))
    fields = [message.get(name) for name in _SUMMARY_HEADERS]
    return Summary(*(_clean(_words_decoded(str(value))) if value is not None else "" for value in fields))


def _head_of(data: bytes) -> bytes:
    """``data`` up to its first empty line (the header block), or all of it."""
    ends = [found + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (found := data.find(mark)) >= 0]
    return data[: min(ends)] if ends else data


def read_head(path: Path) -> bytes:
    """The header block of the file at ``path``: its bytes up to and including the first empty
    line, at most :data:`MAX_HEAD_BYTES`. Raises OSError."""
    head = bytearray()
    with path.open("rb") as handle:
        for line in handle:
            head += line
            if line in (b"\r\n", b"\n") or len(head) >= MAX_HEAD_BYTES:
                break
    return bytes(head[:MAX_HEAD_BYTES])


def message_path(directory: Path, name: str) -> Path | None:
    """The file of the message called ``name`` in ``directory``, or None when ``name`` is not a
    message name (:data:`NAME`: a path, ``..``, a hidden file, an over-long name) or no such
    regular file is there (a symbolic link is not one). Nothing outside ``directory`` can be
    named."""
    if not NAME.fullmatch(name):
        return None
    path = directory / name
    try:
        return path if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def _row(name: str, mtime_ns: int, size: int, summary: Summary) -> tuple[object, ...]:
    return (name, mtime_ns, size, summary.mail_from, summary.rcpt_to, summary.from_header, summary.to_header,
            summary.subject, summary.message_id, f"{summary.rcpt_to}\n{summary.to_header}".casefold(),
            summary.subject.casefold())  # fmt: skip


_INSERT = f"INSERT OR REPLACE INTO message VALUES ({', '.join('?' * 11)})"


def _connect(path: Path | str) -> sqlite3.Connection:
    """A connection to the index at ``path`` (or ``":memory:"``), its table made when the file
    is new or of another :data:`SCHEMA_VERSION`. Raises sqlite3.Error (the connection closed)."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            connection.execute("BEGIN IMMEDIATE")
            if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                connection.execute("DROP TABLE IF EXISTS message")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("COMMIT")
        if path != ":memory:":
            connection.execute("PRAGMA journal_mode = WAL")  # the sink writes while pages read
            connection.execute("PRAGMA synchronous = NORMAL")  # no fsync per message: the files are the truth
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _open_index(directory: Path) -> sqlite3.Connection:
    """The index of ``directory``, made or rebuilt as needed (module docstring); in memory when
    the folder's file cannot be opened (a read-only folder, a lock held too long)."""
    path = directory / INDEX_NAME
    try:
        return _connect(path)
    except sqlite3.OperationalError:
        return _connect(":memory:")
    except sqlite3.DatabaseError:
        pass  # not a database, or a broken one: start it again
    for suffix in ("", "-wal", "-shm"):
        try:
            (directory / (INDEX_NAME + suffix)).unlink(missing_ok=True)
        except OSError:
            pass
    try:
        return _connect(path)
    except sqlite3.Error:
        return _connect(":memory:")


class Search:
    """The messages matching one search, newest first, sliced lazily: ``len()`` / ``count()``
    is one COUNT, ``search[a:b]`` one page (a list of :class:`Entry`). Django's Paginator takes
    it as its object list."""

    def __init__(self, connection: sqlite3.Connection, where: str, params: tuple[str, ...]):
        self._connection, self._where, self._params = connection, where, params

    def count(self) -> int:
        return int(self._connection.execute(f"SELECT count(*) FROM message{self._where}", self._params).fetchone()[0])

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[Entry]:
        return iter(self[0:])

    @overload
    def __getitem__(self, index: int, /) -> Entry: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[Entry]: ...
    def __getitem__(self, index: int | slice, /) -> Entry | list[Entry]:
        if isinstance(index, int):
            found = self[index : index + 1]
            if not found:
                raise IndexError(index)
            return found[0]
        start, stop = max(index.start or 0, 0), index.stop
        limit = -1 if stop is None else max(stop - start, 0)
        rows = self._connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM message{self._where}"
            " ORDER BY mtime_ns DESC, name DESC LIMIT ? OFFSET ?",
            (*self._params, limit, start),
        )
        return [Entry(name, mtime_ns, size, Summary(*fields)) for name, mtime_ns, size, *fields in rows]


class Mailbox:
    """The sink's folder and its index, open for one request or one delivery; a context
    manager that closes the index. ``directory`` need not exist (an empty mailbox)."""

    def __init__(self, directory: Path):
        self.directory = directory
        if directory.is_dir():
            self._connection = _open_index(directory)
        else:
            self._connection = _connect(":memory:")

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def _files(self) -> Iterator[tuple[str, int, int]]:
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            if not NAME.fullmatch(entry.name):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    yield entry.name, stat.st_mtime_ns, stat.st_size
            except OSError:
                continue  # gone between the listing and the stat

    def sync(self) -> None:
        """Bring the index in line with the folder: index the files it lacks or that changed
        (their header block only), drop the rows of files that are gone. When the index file
        cannot be written, this mailbox goes on with an index in memory."""
        files = {name: (mtime_ns, size) for name, mtime_ns, size in self._files()}
        try:
            self._sync(files)
        except sqlite3.OperationalError:
            self._connection.close()
            self._connection = _connect(":memory:")
            self._sync(files)

    def _sync(self, files: dict[str, tuple[int, int]]) -> None:
        indexed = {name: (mtime_ns, size) for name, mtime_ns, size in self._connection.execute(
            "SELECT name, mtime_ns, size FROM message")}  # fmt: skip
        gone = [(name,) for name in indexed.keys() - files.keys()]
        rows = []
        for name, (mtime_ns, size) in files.items():
            if indexed.get(name) != (mtime_ns, size):
                try:
                    summary = header_summary(read_head(self.directory / name))
                except OSError:
                    continue  # gone, or not readable: left out until it can be read
                rows.append(_row(name, mtime_ns, size, summary))
        if not gone and not rows:
            return
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.executemany("DELETE FROM message WHERE name = ?", gone)
            self._connection.executemany(_INSERT, rows)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def deliver(self, *, mail_from: str, rcpt_tos: list[str], data: bytes) -> str:
        """Keep one received message (``data``: its bytes as received) in the folder (made if
        missing) and index it; returns its file name. The envelope goes first as two header
        fields (module docstring). The file is kept even when the index cannot be written (the
        next reader indexes it); raises OSError when the file itself cannot be written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}-{next(_counter)}.eml"
        envelope = f"X-Engage-Sink-Mail-From: {mail_from}\r\nX-Engage-Sink-Rcpt-To: {', '.join(rcpt_tos)}\r\n".encode()
        tmp = self.directory / (name + ".tmp")
        tmp.write_bytes(envelope + data)
        tmp.rename(self.directory / name)
        try:
            stat = (self.directory / name).stat()
            summary = header_summary(envelope + _head_of(data[:MAX_HEAD_BYTES]))
            self._connection.execute(_INSERT, _row(name, stat.st_mtime_ns, stat.st_size, summary))
        except (sqlite3.Error, OSError):
            pass  # the file is the truth: the next reader indexes it
        return name

    def search(self, *, recipient: str = "", subject: str = "") -> Search:
        """The indexed messages whose envelope recipients or To header contain ``recipient``
        and whose Subject contains ``subject`` (case-insensitive substrings; ``""`` matches
        all), newest first. Call :meth:`sync` first to see the folder as it is now."""
        clauses, params = [], []
        for column, text in (("recipient_key", recipient), ("subject_key", subject)):
            if text.strip():
                clauses.append(f"instr({column}, ?) > 0")
                params.append(text.strip().casefold())
        return Search(self._connection, " WHERE " + " AND ".join(clauses) if clauses else "", tuple(params))


#: The most MIME parts the message page reads. Each part starts at a line beginning ``--``
#: (its boundary), so the message is cut before its ``MAX_PARTS + 1``-th such line, whatever
#: its boundaries are: parsing grows with the parts (found by an attacker: 20,000 parts took
#: ~8 s with ``policy.default``). A text with many lines starting ``--`` is cut early too;
#: the page says so and the raw download has it all.
MAX_PARTS = 200
_PART_START = re.compile(rb"^--", re.M)


def _parts_capped(data: bytes) -> tuple[bytes, bool]:
    """``data`` cut before its (:data:`MAX_PARTS` + 1)-th line starting with ``--``, and
    whether it was cut. Linear in ``data``."""
    for number, found in enumerate(_PART_START.finditer(data)):
        if number == MAX_PARTS:
            return data[: found.start()], True
    return data, False


@dataclass(frozen=True)
class Reading:
    """One message file read for its page: ``headers`` (name, value) in order, the sink's
    envelope fields left out, values decoded as in :class:`Summary` but not cut; ``html``
    and ``text``, the message's preferred HTML and plain-text bodies (``""`` when it has
    none); ``problem``, why (part of) the message could not be read, else ``""``;
    ``parts_read``, the MIME parts read (the message itself not counted); ``parts_cut``,
    whether the message was cut at :data:`MAX_PARTS` parts (:func:`_parts_capped`)."""

    headers: list[tuple[str, str]]
    html: str
    text: str
    problem: str
    parts_read: int = 0
    parts_cut: bool = False


def _part_text(message: EmailMessage, subtype: str) -> tuple[str, str]:
    """(the body of the preferred ``text/<subtype>`` part, a problem or "")."""
    try:
        part = message.get_body(preferencelist=(subtype,))
        content = part.get_content() if part is not None else ""
        return (content if isinstance(content, str) else ""), ""
    except Exception as exc:  # noqa: BLE001  an unknown charset, a broken transfer encoding...
        return "", f"the {subtype} part cannot be read ({type(exc).__name__}: {str(exc)[:200]})"


def message_read(path: Path) -> Reading:
    """Read the message file at ``path`` (:func:`message_path`) for its page. Never raises on
    what the file holds: a header that cannot be decoded is shown raw, a body that cannot be
    read is named in ``problem``. Raises OSError when the file cannot be read."""
    data, cut = _parts_capped(path.read_bytes())
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # noqa: BLE001  the parser is lenient; anything it still refuses
        return Reading([], "", data.decode("utf-8", "replace"), f"the message cannot be parsed ({exc})", 0, cut)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage objects
    headers = []
    for name, raw in message.raw_items():
        if name.lower().startswith("x-engage-sink-"):
            continue
        # Decoded by hand from the raw value, cut first (SHOWN_HEADER_CHARS), never through
        # policy.default's header classes, whose memory grows with the square of the words.
        headers.append((name, _CONTROL.sub(" ", _words_decoded(_unfolded(str(raw)))).strip()))
    html, html_problem = _part_text(message, "html")
    text, text_problem = _part_text(message, "plain")
    problem = "; ".join(p for p in (html_problem, text_problem) if p)
    return Reading(headers, html, text, problem, sum(1 for _part in message.walk()) - 1, cut)
