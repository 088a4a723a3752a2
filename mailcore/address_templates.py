"""Address header templates: the structure comes from the template, never from the data.
PURE (the substitution language, ``recipient_lists.recipients`` and ``mailcore.headers``).

An address header that uses the template language (``reply_to: "{{team}} <r@example.com>"``,
``Cc: "{{name}}" <{{email}}>, boss@example.com``, a substituted ``Cc`` of an ``email_rfc822``
source) is parsed ONCE, before any substitution, into its mailboxes: each has a display-name
part and an addr-spec part, found from the template's own ``,`` ``;`` ``:`` ``<`` ``>`` ``"``
and ``( )`` (RFC 5322 §3.4), with every ``{{ }}`` tag an opaque hole. Each part is then
compiled on its own and rendered per recipient; :meth:`AddressTemplate.render` returns the
``(display name, addr-spec)`` pairs that ``mailcore.headers.header_line`` writes. Rendered
text is never parsed as an address list, so:

- what substitution yields in a display-name position stays inside that display name
  (``{{v}} <r@example.com>`` with ``v = "evil@attacker.example, Team"`` is one mailbox,
  ``r@example.com``, whose name is that text);
- where substitution yields the address itself (``{{email}}``, ``<{{email}}>``) the rendered
  text must be exactly ONE email address (:func:`mailcore.addresses.address_problem`),
  else :class:`mailcore.headers.HeaderError` naming the header; a part that is the
  whole mailbox (``{{reply}}``) may also render ``Name <addr>`` (one mailbox, as ``from``).
  A part that renders empty gives no address (``Cc: {{cc}}`` with no ``cc``: no Cc header).
- a group (``Team: a@x.test, b@x.test;``) is written as its mailboxes; comments are dropped.

A ``{{if}}`` or ``{{each}}`` block must stay inside one display name or one address; one that
spans the structure (``a@x.test{{if b}}, b@x.test{{end}}``) is a ``TemplateSyntaxError``.
"""

from __future__ import annotations

import re
from typing import Any

from mailcore.addresses import address_problem, split_address
from mailcore.headers import Address, HeaderError, decode_words, display_name
from mailcore.language import DEFAULT_RENDER_LIMITS, CompiledPart, RenderLimits, compile_part
from mailcore.language.errors import TemplateSyntaxError
from mailcore.language.lexer import LexError, Tag, lex

__all__ = ["AddressTemplate", "compile_addresses"]

_HOLE = "\x00"  # a tag in the skeleton: never structure
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _Bad(ValueError):
    pass


class AddressTemplate:
    """One compiled address header; :meth:`render` per recipient. ``mailboxes`` holds
    ``(name, address, bare)``: each part a ``str`` (no substitution) or a ``CompiledPart``;
    ``bare`` when the address part is the whole mailbox (no ``<>`` in the template)."""

    __slots__ = ("header", "mailboxes", "literal")

    def __init__(self, header: str, mailboxes: list[tuple[Any, Any, bool]]) -> None:
        self.header = header
        self.mailboxes = mailboxes
        self.literal: list[Address] | None = None
        if all(name.__class__ is str and address.__class__ is str for name, address, _bare in mailboxes):
            self.literal = [(name, address) for name, address, _bare in mailboxes]

    def render(self, data: dict[str, Any], *, limits: RenderLimits = DEFAULT_RENDER_LIMITS) -> list[Address]:
        """The mailboxes for one recipient. Raises ``TemplateRenderError``, and
        ``HeaderError`` when a substituted address part is not exactly one address."""
        if self.literal is not None:
            return self.literal
        out: list[Address] = []
        for name, address, bare in self.mailboxes:
            shown = name if name.__class__ is str else name.render(data, limits=limits)
            if address.__class__ is not str:
                address = address.render(data, limits=limits).strip()
                if not address:
                    continue  # the template's address is empty for this recipient
                if bare and address.endswith(">"):
                    shown, address = split_address(address)
                problem = address_problem(address)
                if problem is not None:
                    raise HeaderError(
                        f"the {self.header} header: {display_name(address)[:254]!r} is not an email address (exactly one is needed here): {problem}"
                    )
            out.append((shown, address))
        return out

    def text(self, data: dict[str, Any], *, limits: RenderLimits = DEFAULT_RENDER_LIMITS) -> tuple[list[Address], str]:
        """``render`` and the first mailbox as text (``"Name <addr>"``), for events."""
        mailboxes = self.render(data, limits=limits)
        if not mailboxes:
            return mailboxes, ""
        name, address = mailboxes[0]
        name = display_name(name) if name else ""
        return mailboxes, f"{name} <{address}>" if name else address


def _skeleton(source: str, part: str) -> tuple[str, list[tuple[int, int]]]:
    """``source`` with every tag blanked to holes (same offsets), and the tag spans."""
    try:
        items = lex(source)
    except LexError as exc:
        raise TemplateSyntaxError(part, source.count("\n", 0, exc.pos) + 1, exc.detail) from None
    tags = [(item.start, item.end) for item in items if isinstance(item, Tag)]
    skeleton = source.replace(_HOLE, " ")
    if tags:
        chars = list(skeleton)
        for start, end in tags:
            chars[start:end] = _HOLE * (end - start)
        skeleton = "".join(chars)
    return skeleton, tags


def _skip_quoted(skeleton: str, i: int) -> int:
    j = i + 1
    while j < len(skeleton) and skeleton[j] != '"':
        j += 2 if skeleton[j] == "\\" else 1
    if j >= len(skeleton):
        raise _Bad("a quoted string is not closed")
    return j + 1


def _skip_comment(skeleton: str, i: int) -> int:
    depth, j = 1, i + 1
    while j < len(skeleton) and depth:
        if skeleton[j] == "\\":
            j += 2
            continue
        depth += (skeleton[j] == "(") - (skeleton[j] == ")")
        j += 1
    if depth:
        raise _Bad("a comment is not closed")
    if _HOLE in skeleton[i:j]:
        raise _Bad("a substitution inside a (comment) would be dropped; put it in the display name")
    return j


def _spans(skeleton: str) -> list[tuple[list[tuple[int, int]], tuple[int, int] | None]]:
    """Each mailbox as (display-name ranges, address range or None), comments left out;
    with no ``<>``, the name ranges are the address (the caller turns them round)."""
    mailboxes: list[tuple[list[tuple[int, int]], tuple[int, int] | None]] = []
    n = len(skeleton)
    start, i = 0, 0
    ranges: list[tuple[int, int]] = []
    angle: tuple[int, int] | None = None

    def close(end: int) -> None:
        nonlocal ranges, angle
        if angle is not None:
            after = angle[1] + 1
            if any(skeleton[max(a, after) : b].strip() for a, b in ranges + [(start, end)] if b > after):
                raise _Bad("text after '>'")
            name = [(a, min(b, angle[0])) for a, b in ranges + [(start, end)] if a < angle[0]]
            mailboxes.append((name, (angle[0] + 1, angle[1])))
        else:
            whole = ranges + [(start, end)]
            if any(skeleton[a:b].strip() for a, b in whole):
                mailboxes.append((whole, None))
        ranges, angle = [], None

    while i < n:
        char = skeleton[i]
        if char == '"':
            i = _skip_quoted(skeleton, i)
        elif char == "(":
            end = _skip_comment(skeleton, i)
            ranges.append((start, i))
            start = i = end
        elif char == "<":
            if angle is not None:
                raise _Bad("two '<' in one address")
            end = skeleton.find(">", i + 1)
            if end < 0:
                raise _Bad("'<' without '>'")
            angle = (i, end)
            i = end + 1
        elif char == ">":
            raise _Bad("'>' without '<'")
        elif char == ":" and angle is None:  # a group's name: its mailboxes follow
            ranges, start = [], i + 1
            i += 1
        elif char in ",;":
            close(i)
            start = i = i + 1
        else:
            i += 1
    close(n)
    return mailboxes


def _piece(source: str, ranges: list[tuple[int, int]], tags: list[tuple[int, int]], *, name: bool) -> str:
    """The template text of one part; a display name loses its outer quotes (literal
    backslash escapes undone) and has literal encoded words decoded."""
    text = "".join(source[a:b] for a, b in ranges).strip(" \t")
    if not name:
        return text
    quoted = len(text) >= 2 and text[0] == text[-1] == '"'
    if quoted:
        text = text[1:-1]
    if not (quoted or "=?" in text):
        return text
    # Undo escapes / decode words in the literal stretches only, never inside a tag.
    out: list[str] = []
    pos = 0
    for start, end in _tags_in(text):
        out += [_literal(text[pos:start], quoted), text[start:end]]
        pos = end
    out.append(_literal(text[pos:], quoted))
    return "".join(out)


def _tags_in(text: str) -> list[tuple[int, int]]:
    try:
        return [(item.start, item.end) for item in lex(text) if isinstance(item, Tag)]
    except LexError:
        return []


def _literal(text: str, quoted: bool) -> str:
    return decode_words(_ESCAPE.sub(r"\1", text) if quoted else text)


def compile_addresses(header: str, source: str, *, part: str | None = None) -> AddressTemplate:
    """Parse and compile the address header ``header`` whose template is ``source``.

    Raises ``TemplateSyntaxError`` (``part``, default ``Header:<header>``) for a template the
    language refuses or a block that spans the structure, and ``HeaderError`` for a value
    that is not an address list or a literal address that is not an email address."""
    part = part or f"Header:{header}"
    skeleton, tags = _skeleton(source, part)
    if tags:
        compile_part(source, part=part, mode="header")  # the language's own errors first, with lines
    try:
        spans = _spans(skeleton)
    except _Bad as exc:
        raise HeaderError(f"the {header} header {source[:254]!r} is not a list of email addresses: {exc}") from None
    mailboxes: list[tuple[Any, Any, bool]] = []
    for name_ranges, address_range in spans:
        bare = address_range is None
        if address_range is None:
            name_src, address_src = "", _piece(source, name_ranges, tags, name=False)
        else:
            name_src = _piece(source, name_ranges, tags, name=True)
            address_src = source[address_range[0] : address_range[1]].strip(" \t")
        if "{{" in address_src:
            address: Any = _compiled(address_src, part, header)
        else:
            problem = address_problem(address_src)
            if problem is not None:
                raise HeaderError(f"the {header} header: {address_src[:254]!r} is not an email address: {problem}")
            address = address_src
        name: Any = _compiled(name_src, part, header) if "{{" in name_src else name_src
        mailboxes.append((name, address, bare))
    return AddressTemplate(header, mailboxes)


def _compiled(source: str, part: str, header: str) -> CompiledPart:
    try:
        return compile_part(source, part=part, mode="header")
    except TemplateSyntaxError as exc:
        raise TemplateSyntaxError(
            part,
            1,
            f"{exc.detail}: in the {header} address header, an if or each block must stay inside one display"
            " name or one address",
        ) from None
