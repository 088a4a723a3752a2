"""``email_rfc822`` content: parse the source once, substitute and track per recipient. PURE.

:func:`compile_message` runs once per transmission. It splits the source into byte ranges
and compiles the ranges that change per recipient with the substitution language (the same
``compile_part`` and link scanners as inline content); :meth:`CompiledMessage.render` then
renders those pieces for one recipient and joins bytes. Everything else goes out exactly as
it came in.

Decisions (SPEC B §1.3, A.2):

- Line ends: CRLF and lone CR become LF (the relay seam writes CRLF on the wire).
- Headers: only the top-level header block is substituted. A field is compiled when its
  value, after decoding RFC 2047 encoded words, contains ``{{``. A rendered value is written
  by ``mailcore.headers.header_line``, like every header of inline content: ASCII as
  is, anything else RFC 2047 encoded (address fields per display name, so the addresses
  stay readable), folded, never over 998 octets. A control character in a substituted
  value becomes a space: substitution never adds a header. A substituted address field is
  split into its mailboxes before substitution (``mailcore.address_templates``): data
  in a display name stays in it, a substituted address must render exactly one address or
  that message fails (``HeaderError``); a field with no address left is left out. A ``Bcc``
  or ``Resent-Bcc`` field is refused (:class:`Rfc822Error`): every recipient would see it.
- Lines over 998 octets (RFC 5322 §2.1.1) never go out: a top-level field is folded again
  by ``header_line``; a leaf's body goes as quoted-printable (7bit/8bit/binary, the
  ``Content-Transfer-Encoding`` field rewritten or added) or is wrapped again (base64,
  quoted-printable), same content; anything else sent as it came (a part header, a
  preamble, a ``message/*`` part) is :class:`Rfc822Error` naming the line.
  ``Content-Type``, ``Content-Transfer-Encoding`` and ``MIME-Version`` are never
  substituted. Part names in errors follow inline content: ``Header:<Name>``.
- Bodies: the first non-attachment ``text/plain``, ``text/html`` and ``text/x-amp-html``
  leaf (depth first, never inside an attached ``message/*``) are decoded (transfer encoding,
  then charset), compiled as the ``text``, ``html`` and ``amp_html`` parts of inline content
  (text and html with the link scan, so clicks and pixels are tracked like inline content;
  AMP without, as inline), and encoded again per recipient with the part's own charset and
  transfer encoding. When a rendered part needs more than that (a character the charset
  cannot hold, 8-bit data in a 7bit part, a line over 998 bytes), the part switches to UTF-8
  and/or quoted-printable (base64 when a substituted value would contain a boundary of an
  enclosing multipart) and its ``Content-Type`` / ``Content-Transfer-Encoding`` fields are
  rewritten to say so. A part that renders to exactly its decoded source keeps its
  original bytes. A part that cannot be decoded (unknown charset or transfer encoding,
  bytes invalid in the declared charset) is left as is: no substitution, no tracking.
- ``substitute=False`` (``perform_substitutions: false``): bodies are sent as written (no
  ``{{ }}`` evaluation) but still get link tracking and pixels; headers are still
  substituted unless ``substitute_headers=False`` (an SMTP injection: nothing substituted).
- A source with no header field, a multipart without a boundary or without any delimiter
  line, or multiparts nested deeper than :data:`MAX_DEPTH`, is not a MIME tree:
  :class:`Rfc822Error`.
"""

from __future__ import annotations

import itertools
import re
import threading
from base64 import encodebytes
from binascii import Error as BinasciiError
from binascii import a2b_base64, a2b_qp, b2a_qp
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, cast

from mailcore.address_templates import AddressTemplate, compile_addresses
from mailcore.headers import ADDRESS_HEADERS, BLIND_HEADERS, HeaderError, decode_words, header_line
from mailcore.language import DEFAULT_RENDER_LIMITS, CompiledPart, MessageTooLarge, RenderLimits, Tracker, compile_part
from mailcore.links import Scan, scan_html, scan_text, unescape_attribute
from mailcore.memo import KeptForShortValues

__all__ = [
    "MAX_DEPTH",
    "NEW_BASE64",
    "NEW_CHARSET",
    "NEW_CTE",
    "CompiledMessage",
    "Entity",
    "Field",
    "LiteralPart",
    "RenderedMessage",
    "Rfc822Error",
    "compile_message",
    "decode_body",
    "decode_words",
    "encode_body",
    "encode_header",
    "normalize_newlines",
    "split_message",
    "text_parts",
]

#: Multiparts nested deeper than this are refused (no RFC sets a limit; this bounds the work
#: and the recursion of the split).
MAX_DEPTH = 32
#: The most parts (entities below the root, every level counted) a message may have: each
#: costs a few hundred bytes to hold, and 20 MiB of ``--a`` lines made 4.1 million of them,
#: 2 GB in a worker (an attacker's finding).
MAX_PARTS = 1000
#: The longest line a message may carry, line end excluded (RFC 5322 §2.1.1).
MAX_LINE_BYTES = 998
#: Bits of the state a body render returns: which of the part's structural fields change.
NEW_CHARSET = 1  # the charset is now utf-8
NEW_CTE = 2  # the transfer encoding is now quoted-printable
NEW_BASE64 = 4  # the transfer encoding is now base64
#: Every state a body render can return: each combination of the bits above.
_STATES = range((NEW_CHARSET | NEW_CTE | NEW_BASE64) + 1)
_LF = ord("\n")
_ENCODABLE = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_BODY_KINDS = {"text/plain": "text", "text/html": "html", "text/x-amp-html": "amp_html"}
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_FOLD = re.compile(r"\n(?=[ \t])")
#: One piece of a compiled message, ``(kind, value)``, by kind:
_SEG_BYTES = 0  # bytes sent as they are
_SEG_HEADER = 1  # the index of a header slot
_SEG_BODY = 2  # the index of a body slot
_SEG_STRUCTURAL = 3  # (body index, the field's bytes for each body state)
_SEG_EXTRA_HEADERS = 4  # the place of the extra headers (value None)
_Segment = tuple[int, Any]
#: An edit of the source is ``(start, order, end, replacement)``; of edits that start at one
#: offset, the lower ``order`` goes first: the pixels before what replaces a span, the fields
#: added at the end of a header block in this order, then the body.
_ORDER_INITIAL_PIXEL = 0
_ORDER_OPEN_PIXEL = 1
_ORDER_REPLACE = 2
_ORDER_ADD_CONTENT_TYPE = 5
_ORDER_ADD_CTE = 6
_ORDER_ADD_MIME_VERSION = 7
_ORDER_EXTRA_HEADERS = 9
_ORDER_BODY = 10


class Rfc822Error(ValueError):
    """The source cannot be parsed into a MIME tree."""


# --- splitting -----------------------------------------------------------------------------------


def normalize_newlines(source: str) -> bytes:
    """The source as UTF-8 bytes with LF line ends (CRLF and lone CR become LF)."""
    if "\r" in source:
        source = source.replace("\r\n", "\n").replace("\r", "\n")
    return source.encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: ``data[start:end]`` is the whole field, continuation lines and the
    final LF included. ``name`` is "" for a leading mbox ``From `` line."""

    name: str
    start: int
    end: int
    value: str  # unfolded, leading whitespace and final line end removed


@dataclass(slots=True)
class Entity:
    """One MIME entity (the message or a part) as byte offsets into the source.

    ``head_end`` is where the header block ends (new fields go there); the body is
    ``data[body_start:end]``. For a part of a multipart, the LF before the next delimiter
    line belongs to the delimiter, not to the body (RFC 2046 §5.1.1).
    """

    start: int
    end: int
    fields: list[Field]
    head_end: int
    body_start: int
    content_type: str
    charset: str | None
    disposition: str | None
    cte: str
    boundaries: tuple[bytes, ...] = ()  # the delimiters ("--" + boundary) of the enclosing multiparts
    children: list[Entity] = field(default_factory=list)

    def header(self, name: str) -> Field | None:
        """The first field called ``name`` (lower case), or None."""
        for item in self.fields:
            if item.name.lower() == name:
                return item
        return None


def _split_head(data: bytes, start: int, end: int) -> tuple[list[Field], int, int]:
    """(fields, head_end, body_start) of the entity ``data[start:end]``.

    The header block ends at the first empty line, or (as ``email.feedparser`` reads it)
    at the first line that is neither a field nor a continuation: that line starts the body.
    """
    fields: list[Field] = []
    pending: tuple[str, int] | None = None  # (name, start) of the field being read
    pos = start
    while pos < end:
        newline = data.find(b"\n", pos, end)
        line_end = end if newline == -1 else newline + 1
        first = data[pos : pos + 1]
        if first == b"\n":
            break
        if first in (b" ", b"\t") and pending is not None:
            pos = line_end
            continue
        match = _FIELD_NAME.match(data, pos, line_end)
        if match is None and not (pos == start and data.startswith(b"From ", pos)):
            break
        if pending is not None:
            fields.append(_field(data, pending, pos))
        pending = (match.group(1).decode("ascii") if match else "", pos)
        pos = line_end
    if pending is not None:
        fields.append(_field(data, pending, pos))
    body_start = pos + 1 if pos < end and data[pos] == _LF else pos
    return fields, pos, body_start


def _field(data: bytes, pending: tuple[str, int], end: int) -> Field:
    name, start = pending
    text = data[start:end].decode("utf-8", "surrogatepass")
    value = text.partition(":")[2] if name else text
    value = _FOLD.sub("", value).rstrip("\n").lstrip(" \t")
    return Field(name, start, end, value)


def _entity(
    data: bytes,
    start: int,
    end: int,
    *,
    default_type: str,
    depth: int,
    parts: list[int],
    boundaries: tuple[bytes, ...] = (),
) -> Entity:
    if depth > MAX_DEPTH:
        raise Rfc822Error(f"multiparts are nested more than {MAX_DEPTH} deep")
    fields, head_end, body_start = _split_head(data, start, end)
    first: dict[str, str] = {}
    for item in fields:
        name = item.name.lower()
        if name in _MIME_FIELDS and name not in first:
            first[name] = item.value
    mime = _mime_fields(default_type, first.get("content-type"), first.get("content-disposition"),
                        first.get("content-transfer-encoding"))  # fmt: skip
    entity = Entity(
        start=start,
        end=end,
        fields=fields,
        head_end=head_end,
        body_start=body_start,
        content_type=mime.content_type,
        charset=mime.charset,
        disposition=mime.disposition,
        cte=mime.cte,
        boundaries=boundaries,
    )
    if entity.content_type.startswith("multipart/"):
        boundary = mime.boundary
        if not boundary:
            raise Rfc822Error(f"a {entity.content_type} part has no boundary parameter")
        child_type = "message/rfc822" if entity.content_type == "multipart/digest" else "text/plain"
        entity.children = _children(data, entity, boundary, child_type, depth, parts)
    return entity


#: The most semicolons (parameters, RFC 2045 §5.1) and characters a part's Content-Type or
#: Content-Disposition may have (:func:`_mime_fields_made`): a long filename split as RFC
#: 2231 §3 says takes a few dozen; at these bounds a message compiles in a few milliseconds.
MAX_PARAMETERS = 128
MAX_PARAMETERS_CHARS = 16 * 1024

#: The fields :func:`_mime_fields` reads, lower case.
_MIME_FIELDS = frozenset(("content-type", "content-disposition", "content-transfer-encoding"))


@dataclass(frozen=True, slots=True)
class _MimeFields:
    content_type: str
    charset: str | None
    disposition: str | None
    cte: str
    boundary: str | None


def _mime_fields_made(
    default_type: str, content_type: str | None, disposition: str | None, cte: str | None
) -> _MimeFields:
    """What an entity's first ``Content-Type``, ``Content-Disposition`` and
    ``Content-Transfer-Encoding`` (unfolded values, None when absent) say, as
    ``email.message.Message`` reads them (RFC 2045, 2183, 2231).

    Raises :class:`Rfc822Error` for a Content-Type or Content-Disposition with more than
    :data:`MAX_PARAMETERS` semicolons or over :data:`MAX_PARAMETERS_CHARS` characters: the
    library's parameter reading is quadratic in them (one of a megabyte of ``;`` in a quoted
    string ran for hours: an attacker's finding)."""
    for name, value in (("Content-Type", content_type), ("Content-Disposition", disposition)):
        if value is not None and (len(value) > MAX_PARAMETERS_CHARS or value.count(";") > MAX_PARAMETERS):
            raise Rfc822Error(
                f"a part's {name} is over {MAX_PARAMETERS} parameters or {MAX_PARAMETERS_CHARS} characters"
            )
    meta = Message()
    meta.set_default_type(default_type)
    for name, value in (("Content-Type", content_type), ("Content-Disposition", disposition),
                        ("Content-Transfer-Encoding", cte)):  # fmt: skip
        if value is not None:
            meta[name] = value
    return _MimeFields(
        content_type=meta.get_content_type(),
        charset=meta.get_content_charset(),
        disposition=meta.get_content_disposition(),
        cte=str(meta.get("content-transfer-encoding", "7bit")).strip().lower() or "7bit",
        boundary=meta.get_boundary() if meta.get_content_maintype() == "multipart" else None,
    )


#: :func:`_mime_fields_made`, once per distinct value that fits a line (998 characters, RFC
#: 5322 §2.1.1; the last 256 kept): the messages of one application share them, and reading
#: them was a fifth of splitting each SMTP injection (bench/RESULTS.md, "Session 20").
_mime_fields = KeptForShortValues(_mime_fields_made, maxsize=256, max_chars=998)


def _children(
    data: bytes, entity: Entity, boundary: str, child_type: str, depth: int, parts: list[int]
) -> list[Entity]:
    """The parts of multipart ``entity``; ``parts[0]``: how many the message has so far
    (:data:`MAX_PARTS`)."""
    marker = b"--" + boundary.encode("utf-8", "surrogatepass")
    boundaries = (*entity.boundaries, marker)
    delimiter = re.compile(rb"^" + re.escape(marker) + rb"(--)?[ \t]*$", re.MULTILINE)
    # No more delimiters than the parts still allowed (and the one past them) are looked for.
    found = list(itertools.islice(delimiter.finditer(data, entity.body_start, entity.end), MAX_PARTS - parts[0] + 2))
    if not found:
        raise Rfc822Error(f"the boundary {boundary!r} of a {entity.content_type} part never appears")
    children: list[Entity] = []
    for index, match in enumerate(found):
        if match.group(1):  # the close delimiter: what follows is the epilogue
            break
        parts[0] += 1
        if parts[0] > MAX_PARTS:
            raise Rfc822Error(f"the message has more than {MAX_PARTS} parts")
        start = min(match.end() + 1, entity.end)
        following = found[index + 1] if index + 1 < len(found) else None
        end = entity.end if following is None else max(following.start() - 1, start)
        children.append(
            _entity(data, start, end, default_type=child_type, depth=depth + 1, parts=parts, boundaries=boundaries)
        )
    return children


def split_message(data: bytes) -> Entity:
    """The MIME tree of a message (LF line ends) as offsets; raises :class:`Rfc822Error`."""
    root = _entity(data, 0, len(data), default_type="text/plain", depth=0, parts=[0])
    if not any(item.name for item in root.fields):
        raise Rfc822Error("the message has no header fields")
    return root


def text_parts(root: Entity) -> dict[str, Entity]:
    """The first non-attachment text/plain, text/html and text/x-amp-html leaves, depth
    first, keyed "text", "html", "amp_html". Attached messages are not entered."""
    found: dict[str, Entity] = {}
    stack = [root]
    while stack:
        entity = stack.pop()
        if entity.children:
            stack.extend(reversed(entity.children))
            continue
        kind = _BODY_KINDS.get(entity.content_type)
        if kind is None or kind in found or entity.disposition == "attachment":
            continue
        if entity.body_start == entity.head_end and entity.body_start == entity.end:
            continue  # no body at all
        found[kind] = entity
    return found


# --- bodies --------------------------------------------------------------------------------------


def decode_body(raw: bytes, *, cte: str, charset: str | None) -> tuple[str, str] | None:
    """``(text, codec)`` of a body, or None when it cannot be decoded reliably.

    ``codec`` is the charset to encode the rendered text with: the declared one, or
    ``us-ascii`` when none is declared (a body that is not ASCII then decodes as UTF-8 and
    will be labelled UTF-8 when it goes out).
    """
    try:
        if cte in ("7bit", "8bit", "binary"):
            payload = raw
        elif cte == "quoted-printable":
            payload = a2b_qp(raw)
        elif cte == "base64":
            payload = a2b_base64(raw)
        else:
            return None
    except (BinasciiError, ValueError):
        return None
    codec = charset or "us-ascii"
    try:
        return payload.decode(codec), codec
    except LookupError:
        return None
    except UnicodeDecodeError:
        if codec not in ("us-ascii", "ascii"):
            return None
    try:
        return payload.decode("utf-8"), codec
    except UnicodeDecodeError:
        return None


def _long_line(payload: bytes) -> bool:
    return len(payload) > MAX_LINE_BYTES and max(map(len, payload.split(b"\n"))) > MAX_LINE_BYTES


def encode_body(
    text: str, *, codec: str, cte: str, suffix: bytes = b"", boundaries: tuple[bytes, ...] = ()
) -> tuple[bytes, int]:
    """``(body bytes, state)``: ``text`` in ``codec`` and ``cte``, falling back to UTF-8
    (state bit :data:`NEW_CHARSET`) and quoted-printable (:data:`NEW_CTE`) when those cannot
    carry it. A body that would contain one of the enclosing ``boundaries`` (a substituted
    value could otherwise end the part) goes as base64 (:data:`NEW_BASE64`). ``suffix``
    (the source's trailing line ends) follows a base64 body."""
    state = 0
    try:
        payload = text.encode(codec)
    except UnicodeEncodeError:
        payload = text.encode("utf-8", "surrogatepass")
        state |= NEW_CHARSET
    if cte == "base64":
        return encodebytes(payload).rstrip(b"\n") + suffix, state
    if cte == "quoted-printable":
        body = b2a_qp(payload)
    elif (cte not in ("8bit", "binary") and not payload.isascii()) or _long_line(payload):
        body = b2a_qp(payload)
        state |= NEW_CTE
    else:
        body = payload
    # Stricter than a delimiter line (any occurrence): never wrong, and rare.
    if boundaries and any(marker in body for marker in boundaries):
        return encodebytes(payload).rstrip(b"\n") + suffix, (state & ~NEW_CTE) | NEW_BASE64
    return body, state


class LiteralPart:
    """A body part sent without substitution (``perform_substitutions: false``), with the
    same tracking as a compiled part: ``render`` has the signature of
    ``CompiledPart.render`` and gives what a compiled part of text without ``{{ }}`` gives
    (``data-msys-*`` and ``[[...]]`` removed, links through ``tracker.link``, pixels through
    ``tracker.pixel``), except that an untracked link keeps its source text."""

    __slots__ = ("part", "source", "_pieces", "_plain", "links")

    def __init__(self, source: str, *, part: str, html: bool, scan: Scan | None = None) -> None:
        self.part = part
        self.source = source
        edits: list[tuple[int, int, int, Any]] = []
        if scan is not None:
            edits += [(start, _ORDER_REPLACE, end, "") for start, end in scan.strip]
            for link in scan.links:
                raw = source[link.start : link.end]
                url = unescape_attribute(raw) if html else raw
                edits.append((link.start, _ORDER_REPLACE, link.end, ("link", raw, url, link)))
            if scan.initial_open_at is not None:
                at = scan.initial_open_at
                edits.append((at, _ORDER_INITIAL_PIXEL, at, ("pixel", "initial_open")))
            if scan.open_at is not None:
                edits.append((scan.open_at, _ORDER_OPEN_PIXEL, scan.open_at, ("pixel", "open")))
        edits.sort(key=lambda edit: (edit[0], edit[1]))
        pieces: list[Any] = []
        pos = 0
        for start, _order, end, piece in edits:
            if start > pos:
                pieces.append(source[pos:start])
            if piece:
                pieces.append(piece)
            pos = max(pos, end)
        pieces.append(source[pos:])
        self._pieces = tuple(pieces)
        self.links = len(scan.links) if scan is not None else 0
        self._plain = "".join(p if p.__class__ is str else p[1] if p[0] == "link" else "" for p in pieces)

    def render(
        self,
        data: dict[str, Any],
        tracker: Tracker | None = None,
        *,
        limits: RenderLimits = DEFAULT_RENDER_LIMITS,
        budget: int | None = None,
    ) -> str:
        """As ``CompiledPart.render``: past ``budget`` (bytes left in the message) it raises
        ``MessageTooLarge``."""
        text = self._plain if tracker is None else self._tracked(tracker)
        if budget is not None and len(text) > budget:
            raise MessageTooLarge(self.part, max(budget, 0))
        return text

    def _tracked(self, tracker: Tracker) -> str:
        out: list[str] = []
        for piece in self._pieces:
            if piece.__class__ is str:
                out.append(piece)
            elif piece[0] == "link":
                _kind, raw, url, span = piece
                wrapped = tracker.link(url, span)
                out.append(raw if wrapped is None or wrapped == url else wrapped)
            else:
                out.append(tracker.pixel(piece[1]))
        return "".join(out)


class _BodySlot:
    __slots__ = ("part", "raw", "decoded", "codec", "cte", "suffix", "boundaries", "keep")

    def __init__(self, part: CompiledPart | LiteralPart, raw: bytes, decoded: str, codec: str, entity: Entity) -> None:
        self.part = part
        self.raw = raw
        self.decoded = decoded
        self.codec = codec
        self.cte = entity.cte
        self.suffix = raw[len(raw.rstrip(b"\n")) :]
        self.boundaries = entity.boundaries
        self.keep = not _long_line(raw)  # a line over 998 octets is never sent as it came

    def render(self, data: dict[str, Any], tracker: Tracker | None, limits: RenderLimits) -> tuple[bytes, int]:
        text = self.part.render(data, tracker, limits=limits)
        if text == self.decoded and self.keep:
            return self.raw, 0
        return encode_body(text, codec=self.codec, cte=self.cte, suffix=self.suffix, boundaries=self.boundaries)


#: Longest body part (characters) whose scan :func:`_scan_part` keeps, how many it keeps, and
#: the most links a kept part may hold: each link costs a scan entry and the literal part's
#: pieces (about 1 KB together), so 64 parts of 64 Ki characters with a link every 9 of them
#: kept 180 MiB in each process (an attacker's finding); at most 512 links a part, the two
#: caches stay under about 40 MiB whatever the parts, and a body with more is scanned each time.
SCAN_CACHE_MAX_CHARS = 64 * 1024
SCAN_CACHE_SIZE = 64
SCAN_CACHE_MAX_LINKS = 512


class _PartCache:
    """What ``build(text, kind)`` gives for the last :data:`SCAN_CACHE_SIZE` body parts of at
    most :data:`SCAN_CACHE_MAX_CHARS` characters and :data:`SCAN_CACHE_MAX_LINKS` links
    (``links`` of the value), looked up by their exact text (least recently used first out).
    Safe across threads (a web process compiles ``email_rfc822`` content on several)."""

    def __init__(self, build: Callable[[str, str], Any], links: Callable[[Any], int]) -> None:
        self.build = build
        self.links = links
        self.entries: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, text: str, kind: str) -> Any:
        if len(text) > SCAN_CACHE_MAX_CHARS:
            return self.build(text, kind)
        key = (text, kind)
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                return found
        value = self.build(text, kind)
        if self.links(value) <= SCAN_CACHE_MAX_LINKS:
            with self.lock:
                self.entries[key] = value
                while len(self.entries) > SCAN_CACHE_SIZE:
                    self.entries.popitem(last=False)
        return value

    def cache_clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _scan_build(text: str, kind: str) -> Scan:
    return scan_html(text) if kind == "html" else scan_text(text)


_scan_cached = _PartCache(_scan_build, lambda scan: len(scan.links))


def _scan_part(text: str, kind: str) -> Scan | None:
    """The link scan of a ``text`` or ``html`` body part (``mailcore.links``; None for AMP).

    A part of up to :data:`SCAN_CACHE_MAX_CHARS` is looked up by its exact text among the
    last :data:`SCAN_CACHE_SIZE` scanned (:class:`_PartCache`; both scans are pure and a
    ``Scan`` is immutable): each SMTP-injected message is a transmission of its own, compiled
    once, and an application that sends one body to many recipients one message each would
    otherwise have the same HTML scanned every time (its messages differ in their header
    block: the ``Received:`` line, ``Date``, ``To``). A different text, by one character, is
    scanned."""
    if kind not in ("html", "text"):
        return None
    return cast(Scan, _scan_cached(text, kind))


def _literal_build(text: str, kind: str) -> LiteralPart:
    return LiteralPart(text, part=kind, html=kind != "text", scan=_scan_part(text, kind))


_literal_cached = _PartCache(_literal_build, lambda part: part.links)


def _literal_part(text: str, kind: str) -> LiteralPart:
    """The :class:`LiteralPart` of a body part sent without substitution, kept with its scan
    (:class:`_PartCache`: the same limits; a ``LiteralPart`` is immutable) so that messages
    sharing a body share its split into pieces too: building it took about half of
    ``compile_message``'s time on bench/smtp_injection.py's 10 KB HTML of 110 links
    (bench/smtp_group_cpu.py; bench/RESULTS.md, "Session 19")."""
    if kind not in ("html", "text"):
        return _literal_build(text, kind)
    return cast(LiteralPart, _literal_cached(text, kind))


def _body_slot(data: bytes, entity: Entity, kind: str, *, substitute: bool) -> _BodySlot | None:
    raw = data[entity.body_start : entity.end]
    decoded = decode_body(raw, cte=entity.cte, charset=entity.charset)
    if decoded is None:
        return None
    text, codec = decoded
    part: CompiledPart | LiteralPart
    if substitute:
        part = compile_part(text, part=kind, mode="text" if kind == "text" else "html", scan=_scan_part(text, kind))
    else:
        part = _literal_part(text, kind)
    return _BodySlot(part, raw, text, codec, entity)


def _utf8_content_type_made(value: str) -> str:
    """A Content-Type value with its ``charset`` parameter set to ``utf-8`` (the others kept:
    ``email.message.Message.set_param``)."""
    meta = Message()
    meta["Content-Type"] = value
    meta.set_param("charset", "utf-8")
    return str(meta["Content-Type"])


#: :func:`_utf8_content_type_made`, once per distinct value that fits a line (as :data:`_mime_fields`).
_utf8_content_type = KeptForShortValues(_utf8_content_type_made, maxsize=256, max_chars=998)


def _structural_edits(data: bytes, entity: Entity, index: int, *, root: bool) -> list[tuple[int, int, int, Any]]:
    """Edits that rewrite (or add) the part's Content-Type / Content-Transfer-Encoding for
    each state a render of body ``index`` can return."""
    edits: list[tuple[int, int, int, Any]] = []
    at = entity.head_end
    content_type = entity.header("content-type")
    if content_type is None:
        original, value = b"", f'{entity.content_type}; charset="utf-8"'
    else:
        original = data[content_type.start : content_type.end]
        value = _utf8_content_type(content_type.value)
    changed = header_line("Content-Type", value)
    variants = tuple(changed if state & NEW_CHARSET else original for state in _STATES)
    span = (
        (at, _ORDER_ADD_CONTENT_TYPE, at)
        if content_type is None
        else (content_type.start, _ORDER_REPLACE, content_type.end)
    )
    edits.append((*span, (_SEG_STRUCTURAL, (index, variants))))
    cte = entity.header("content-transfer-encoding")
    original = b"" if cte is None else data[cte.start : cte.end]
    qp, b64 = b"Content-Transfer-Encoding: quoted-printable\n", b"Content-Transfer-Encoding: base64\n"
    variants = tuple(b64 if state & NEW_BASE64 else qp if state & NEW_CTE else original for state in _STATES)
    span = (at, _ORDER_ADD_CTE, at) if cte is None else (cte.start, _ORDER_REPLACE, cte.end)
    edits.append((*span, (_SEG_STRUCTURAL, (index, variants))))
    if root and entity.header("mime-version") is None:
        variants = (b"",) + (b"MIME-Version: 1.0\n",) * (len(_STATES) - 1)
        edits.append((at, _ORDER_ADD_MIME_VERSION, at, (_SEG_STRUCTURAL, (index, variants))))
    return edits


# --- headers -------------------------------------------------------------------------------------


def encode_header(name: str, text: str) -> bytes:
    """The header line(s) for a decoded, rendered value: ``mailcore.headers.header_line``
    (``b""`` for an address field with no address). Raises ``HeaderError`` for an address
    field that holds something other than addresses."""
    return header_line(name, text)


class _HeaderSlot:
    __slots__ = ("name", "part")

    def __init__(self, name: str, part: CompiledPart) -> None:
        self.name = name
        self.part = part

    def render(self, data: dict[str, Any], limits: RenderLimits) -> tuple[bytes, str]:
        text = self.part.render(data, limits=limits)
        return encode_header(self.name, text), text


class _AddressSlot:
    """A substituted address field: parsed into mailboxes before substitution
    (``mailcore.address_templates``), written from the rendered pairs."""

    __slots__ = ("name", "template")

    def __init__(self, name: str, template: AddressTemplate) -> None:
        self.name = name
        self.template = template

    def render(self, data: dict[str, Any], limits: RenderLimits) -> tuple[bytes, str]:
        mailboxes, text = self.template.text(data, limits=limits)
        return header_line(self.name, mailboxes), text


# --- the compiled message ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    data: bytes  # LF line ends
    subject: str  # decoded
    from_header: str  # decoded


class CompiledMessage:
    """An ``email_rfc822`` source, split and compiled once; :meth:`render` per recipient.

    ``parts`` names the body parts that are rendered ("text", "html", "amp_html");
    ``headers`` the header fields that are substituted.
    """

    __slots__ = ("_segments", "_headers", "_bodies", "_subject", "_from", "parts", "headers",
                 "has_list_unsubscribe", "has_list_unsubscribe_post", "has_date", "has_message_id")  # fmt: skip

    def __init__(
        self,
        *,
        segments: tuple[_Segment, ...],
        headers: list[_HeaderSlot | _AddressSlot],
        bodies: list[_BodySlot],
        subject: str | int,
        from_header: str | int,
        parts: tuple[str, ...],
        has_list_unsubscribe: bool,
        has_list_unsubscribe_post: bool = False,
        has_date: bool = True,
        has_message_id: bool = True,
    ) -> None:
        self._segments = segments
        self._headers = headers
        self._bodies = bodies
        self._subject = subject
        self._from = from_header
        self.parts = parts
        self.headers = tuple(slot.name for slot in headers)
        self.has_list_unsubscribe = has_list_unsubscribe
        self.has_list_unsubscribe_post = has_list_unsubscribe_post
        #: Whether the top-level header block has a ``Date`` / ``Message-ID`` field: the sender
        #: adds one to each copy when not (RFC 5322 §3.6.1 requires Date; RFC 6409 §8.2-8.3).
        self.has_date = has_date
        self.has_message_id = has_message_id

    @property
    def literal_from(self) -> str:
        """The ``From`` field's text as written, or "" when it is substituted per recipient."""
        return self._from if isinstance(self._from, str) else ""

    def render(
        self, data: dict[str, Any], tracker: Tracker | None = None, *, limits: RenderLimits = DEFAULT_RENDER_LIMITS,
        extra_headers: bytes = b"",
    ) -> RenderedMessage:  # fmt: skip
        """The message for one recipient; ``extra_headers`` (complete lines) go at the end
        of the top-level header block. Raises ``TemplateRenderError``."""
        if limits.message_loops is None:
            limits = limits.for_message()  # one loop budget for every header and body part
        headers = [slot.render(data, limits) for slot in self._headers]
        bodies = [slot.render(data, tracker, limits) for slot in self._bodies]
        out: list[bytes] = []
        for kind, value in self._segments:
            if kind == _SEG_BYTES:
                out.append(value)
            elif kind == _SEG_HEADER:
                out.append(headers[value][0])
            elif kind == _SEG_BODY:
                out.append(bodies[value][0])
            elif kind == _SEG_STRUCTURAL:
                out.append(value[1][bodies[value[0]][1]])
            else:
                out.append(extra_headers)
        # str: the field as it came; int: the index of its header slot
        subject = self._subject if self._subject.__class__ is str else headers[cast(int, self._subject)][1]
        from_header = self._from if self._from.__class__ is str else headers[cast(int, self._from)][1]
        return RenderedMessage(b"".join(out), subject, from_header)


def _leaves(root: Entity) -> list[Entity]:
    stack, leaves = [root], []
    while stack:
        entity = stack.pop()
        if entity.children:
            stack.extend(entity.children)
        else:
            leaves.append(entity)
    return leaves


def _encoded_again(data: bytes, entity: Entity) -> list[tuple[int, int, int, Any]]:
    """Edits that send a leaf whose body has a line over 998 octets (RFC 5322 §2.1.1) with
    the same content: quoted-printable for 7bit/8bit/binary (``Content-Transfer-Encoding``
    rewritten or added), re-wrapped base64 or quoted-printable otherwise. A ``message/*``
    part cannot be (RFC 2046 §5.2.1): :class:`Rfc822Error`."""
    raw = data[entity.body_start : entity.end]
    suffix = raw[len(raw.rstrip(b"\n")) :]
    line = data.count(b"\n", 0, entity.body_start) + 1
    if entity.content_type.startswith("message/") or entity.cte not in _ENCODABLE:
        raise Rfc822Error(
            f"a {entity.content_type} part from line {line} has a line longer than {MAX_LINE_BYTES} octets"
        )
    try:
        if entity.cte == "base64":
            body = encodebytes(a2b_base64(raw)).rstrip(b"\n") + suffix
        elif entity.cte == "quoted-printable":
            body = b2a_qp(a2b_qp(raw))
        else:
            body = b2a_qp(raw)
    except (BinasciiError, ValueError):
        raise Rfc822Error(f"the {entity.cte} body of the part from line {line} cannot be decoded") from None
    edits: list[tuple[int, int, int, Any]] = [(entity.body_start, _ORDER_BODY, entity.end, (_SEG_BYTES, body))]
    if entity.cte not in ("base64", "quoted-printable"):
        qp = b"Content-Transfer-Encoding: quoted-printable\n"
        cte = entity.header("content-transfer-encoding")
        edits.append(
            (entity.head_end, _ORDER_ADD_CTE, entity.head_end, (_SEG_BYTES, qp))
            if cte is None
            else (cte.start, _ORDER_REPLACE, cte.end, (_SEG_BYTES, qp))
        )
    return edits


def _fitting(data: bytes, start: int, end: int) -> bytes:
    """``data[start:end]``, which goes out as it came: :class:`Rfc822Error` naming the line
    when one is longer than 998 octets (a part header, a multipart's preamble...)."""
    chunk = data[start:end]
    if _long_line(chunk):
        offset = 0
        for piece in chunk.split(b"\n"):
            if len(piece) > MAX_LINE_BYTES:
                break
            offset += len(piece) + 1
        line = data.count(b"\n", 0, start + offset) + 1
        raise Rfc822Error(f"line {line} is longer than {MAX_LINE_BYTES} octets (RFC 5322 §2.1.1)")
    return chunk


def compile_message(source: str, *, substitute: bool = True, substitute_headers: bool = True) -> CompiledMessage:
    """Split and compile an ``email_rfc822`` source (see the module docstring).

    ``substitute=False`` sends the bodies as written (``perform_substitutions: false``: the
    headers are still substituted, SPEC B §1.2); ``substitute_headers=False`` sends the
    headers as written too, ``{{`` and all (SMTP injection: no substitution, SPEC A.4).

    Raises :class:`Rfc822Error` when the source is not a MIME tree and the language's
    ``TemplateSyntaxError`` (naming the part and the line in it) when a substituted header
    or body does not compile. Headers compile first, in their order, then text, html, AMP.
    """
    if not isinstance(source, str):
        raise Rfc822Error("must be a string")
    data = normalize_newlines(source)
    if not data.endswith(b"\n"):
        data += b"\n"  # so that every header field ends with a line end
    root = split_message(data)
    edits: list[tuple[int, int, int, Any]] = []
    headers: list[_HeaderSlot | _AddressSlot] = []
    subject: str | int | None = None
    from_header: str | int | None = None
    for item in root.fields:
        lname = item.name.lower()
        if lname in BLIND_HEADERS:
            raise Rfc822Error(
                f"it has a {item.name} header, which every recipient would see (RFC 5322 §3.6.3); for a blind"
                " copy add a recipient whose address.header_to is the visible recipient's address"
            )
        if not lname or lname in _STRUCTURAL:
            continue
        text = decode_words(item.value)
        value: str | int = text
        if substitute_headers and "{{" in text:
            value = len(headers)
            if lname in ADDRESS_HEADERS:
                try:
                    headers.append(_AddressSlot(item.name, compile_addresses(item.name, text)))
                except HeaderError as exc:
                    raise Rfc822Error(str(exc)) from None
            else:
                headers.append(_HeaderSlot(item.name, compile_part(text, part=f"Header:{item.name}", mode="header")))
            edits.append((item.start, _ORDER_REPLACE, item.end, (_SEG_HEADER, value)))
        elif _long_line(data[item.start : item.end]):
            try:  # folded again (RFC 5322 §2.1.1): the relay refuses a line over 998 octets
                edits.append((item.start, _ORDER_REPLACE, item.end, (_SEG_BYTES, header_line(item.name, text))))
            except HeaderError as exc:
                raise Rfc822Error(str(exc)) from None
        if lname == "subject" and subject is None:
            subject = value
        elif lname == "from" and from_header is None:
            from_header = value
    bodies: list[_BodySlot] = []
    kinds: list[str] = []
    found = text_parts(root)
    rendered: set[int] = set()
    for kind in ("text", "html", "amp_html"):
        entity = found.get(kind)
        if entity is None:
            continue
        slot = _body_slot(data, entity, kind, substitute=substitute)
        if slot is None:
            continue
        index = len(bodies)
        bodies.append(slot)
        edits.append((entity.body_start, _ORDER_BODY, entity.end, (_SEG_BODY, index)))
        edits += _structural_edits(data, entity, index, root=entity is root)
        kinds.append(kind)
        rendered.add(entity.start)
    for entity in _leaves(root):
        if entity.start not in rendered and _long_line(data[entity.body_start : entity.end]):
            edits += _encoded_again(data, entity)
    edits.append((root.head_end, _ORDER_EXTRA_HEADERS, root.head_end, (_SEG_EXTRA_HEADERS, None)))
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    segments: list[_Segment] = []
    pos = 0
    for start, _order, end, segment in edits:
        if start > pos:
            segments.append((_SEG_BYTES, _fitting(data, pos, start)))
        segments.append(segment)
        pos = max(pos, end)
    if pos < len(data):
        segments.append((_SEG_BYTES, _fitting(data, pos, len(data))))
    return CompiledMessage(
        segments=tuple(segments),
        headers=headers,
        bodies=bodies,
        subject=subject if subject is not None else "",
        from_header=from_header if from_header is not None else "",
        parts=tuple(kinds),
        has_list_unsubscribe=root.header("list-unsubscribe") is not None,
        has_list_unsubscribe_post=root.header("list-unsubscribe-post") is not None,
        has_date=root.header("date") is not None,
        has_message_id=root.header("message-id") is not None,
    )
