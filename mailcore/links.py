"""Find trackable links in HTML and text parts, and rewrite them (pure, no Django, no I/O).

The scanners return source offsets (:class:`Scan`) so a caller can scan a template once and
splice per recipient; :func:`rewrite_html` / :func:`rewrite_text` do scan + splice in one go.
Everything outside the link URLs, the stripped ``data-msys-*`` attributes / ``[[...]]``
markers and the inserted pixels comes out byte-identical.

HTML decisions (SPEC A.2, B §4.5, B §5.1):

- The HTML scanner is a small tokenizer (comments, ``<!DOCTYPE>``, ``<![CDATA[...]]>``,
  ``<?...>``, end tags, raw-text elements such as ``<script>`` / ``<style>``, quoted,
  unquoted and value-less attributes, any letter case), not one regex over the document.
- A link is the first ``href`` of an ``<a>`` or ``<area>`` start tag whose value starts
  *literally* with ``http://`` or ``https://`` (ASCII case-insensitive). Leading whitespace
  or a character reference before the scheme makes it not a link: SparkPost only tracks
  links whose scheme is written literally, so ``href="{{{full_url}}}"`` is not tracked either.
- Links inside HTML comments are left alone. That includes Outlook conditional comments
  ``<!--[if mso]>...<![endif]-->`` (their content is one comment to every non-Outlook
  reader); the downlevel-revealed form ``<!--[if !mso]><!-->...<!--<![endif]-->`` is
  ordinary markup and its links are tracked.
- ``{{ ... }}`` and ``{{{ ... }}}`` runs are opaque, in text and inside tags: a quote, space
  or ``>`` inside them never ends a value, an attribute or a tag, so template source such as
  ``<a href="http://x.com/?u={{user}}&amp;o={{ offer }}">`` scans like the rendered HTML.
  A ``{{`` with no closing ``}}`` is two ordinary characters.
- The URL handed to ``wrap`` has its character references decoded once, the way a browser
  decodes an attribute value: like :func:`html.unescape`, except that a named reference
  without ``;`` followed by ``=`` or a letter/digit stays literal (``?a=1&copy=2`` keeps
  ``&copy=2``, as in every browser).
- Not links, but still stripped of ``data-msys-*``: ``mailto:``, ``tel:``, ``#anchors``,
  relative URLs, links with ``data-msys-clicktrack="0"`` and URLs over 4096 UTF-8 bytes.
- Link name: ``data-msys-linkname``, else the link's ``title``, else the ``alt`` of the
  first ``<img>`` with a non-empty ``alt`` before ``</a>``, else ``"Raw URL"``; empty values
  count as absent, and every name is cut to 63 UTF-8 bytes on a character boundary.
- Each link also gets its ``position`` (1 for the first trackable link of the part, in
  source order) and its ``written`` URL, the href as it appears in the source (character
  references decoded once, ``{{...}}`` left as written). Scanned on a template's source, they
  identify the *template* link whatever each recipient's URL becomes: the report groups
  clicks by them (Engage's ``engage_link_position`` / ``engage_link_template_url`` event
  fields), so ``https://x/a?id={{id}}`` is one link, and the same URL written twice is two.
- Pixels: ``open_pixel`` goes before the last ``</body>`` (appended when there is none);
  ``initial_open_pixel`` goes right after the first ``<body ...>`` tag and is left out when
  there is no ``<body>`` (before a doctype it would change the rendering mode).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.entities import html5 as _HTML5
from typing import cast

__all__ = [
    "MAX_URL_BYTES",
    "RAW_URL",
    "LinkSpan",
    "Scan",
    "pixel_html",
    "rewrite_html",
    "rewrite_text",
    "scan_html",
    "scan_text",
]

MAX_URL_BYTES = 4096
MAX_NAME_BYTES = 63
RAW_URL = "Raw URL"


@dataclass(frozen=True, slots=True)
class LinkSpan:
    """One trackable URL: ``source[start:end]`` is the href value (without quotes) or the
    bare text URL; ``html`` says which, so that what replaces it is attribute-escaped in
    HTML (``html.escape``) and written as is in text."""

    start: int
    end: int
    name: str
    sublink: str | None
    unsubscribe: bool
    html: bool = False
    #: 1-based order of the link among the trackable links of its part (0: not numbered).
    position: int = 0
    #: The URL as written in the scanned source (HTML: character references decoded once).
    written: str = ""


@dataclass(frozen=True, slots=True)
class Scan:
    """What to change in a part: links to wrap, ranges to delete, where pixels go."""

    links: tuple[LinkSpan, ...]
    strip: tuple[tuple[int, int], ...]
    initial_open_at: int | None
    open_at: int | None


# ---------------------------------------------------------------------------------------
# shared helpers

_SPACE = "\t\n\f\r "
_SCHEME = re.compile(r"https?://", re.IGNORECASE | re.ASCII)
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_ALNUM_OR_EQ = re.compile(r"[A-Za-z0-9=]")


def _skip_braces(s: str, i: int) -> int:
    """``s[i:]`` starts with ``{{``: return the end of the opaque run, or ``i + 2`` when it
    is not closed."""
    if s.startswith("{{{", i):
        end = s.find("}}}", i + 3)
        if end != -1:
            return end + 3
    end = s.find("}}", i + 2)
    return i + 2 if end == -1 else end + 2


def _replace_attr_charref(match: re.Match[str]) -> str:
    ref = match.group(1)
    if ref[0] != "#" and ref not in _HTML5:
        # A legacy reference without ";" (e.g. "&copy") is not decoded inside an attribute
        # when "=" or an alphanumeric follows it (HTML "named character reference state").
        for cut in range(len(ref) - 1, 1, -1):
            if ref[:cut] in _HTML5:
                if _ALNUM_OR_EQ.match(ref, cut):
                    return "&" + ref
                break
    return html.unescape("&" + ref)


def unescape_attribute(value: str) -> str:
    """Decode the character references of an attribute value once, as browsers do."""
    if "&" not in value:
        return value
    return _CHARREF.sub(_replace_attr_charref, value)


def _truncate_name(name: str) -> str:
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_NAME_BYTES:
        return name
    return encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def _too_long(url: str) -> bool:
    return len(url) > MAX_URL_BYTES // 4 and len(url.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES


def pixel_html(url: str) -> str:
    """The 1x1 open-tracking image tag for ``url``."""
    return f'<img src="{html.escape(url)}" width="1" height="1" border="0" alt="">'


# ---------------------------------------------------------------------------------------
# HTML

_TEXT_STOP = re.compile(r"<|\{\{")
_SPACE_RUN = re.compile(r"[\t\n\f\r ]*")
# "...*" matches at every offset: its match is never None (cast once, not per call).
_match_space_run = cast("Callable[[str, int], re.Match[str]]", _SPACE_RUN.match)
_TAG_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
_NAME_STOP = re.compile(r"[\t\n\f\r />=]|\{\{")
_UNQUOTED_STOP = re.compile(r"[\t\n\f\r >]|\{\{")
_DQ_STOP = re.compile(r'"|\{\{')
_SQ_STOP = re.compile(r"'|\{\{")
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})
_NEEDS_ATTRIBUTES = frozenset({"a", "area", "img"})
_QUICK_TAG_BLOCKER = re.compile(r"[\"']|\{\{|data-msys-", re.IGNORECASE | re.ASCII)
_RAW_END = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE | re.ASCII) for name in _RAW_TEXT}


class _Attr:
    __slots__ = ("name", "strip_start", "end", "value_start", "value_end")

    def __init__(self, name: str, strip_start: int, end: int, value_start: int, value_end: int) -> None:
        self.name = name
        self.strip_start = strip_start
        self.end = end
        self.value_start = value_start
        self.value_end = value_end


def _find_stop(s: str, pattern: re.Pattern[str], i: int) -> int:
    """Index of the first ``pattern`` stop at or after ``i`` outside ``{{...}}`` runs, or
    ``len(s)``."""
    while True:
        match = pattern.search(s, i)
        if match is None:
            return len(s)
        j = match.start()
        if s[j] != "{":
            return j
        i = _skip_braces(s, j)


def _parse_attributes(s: str, i: int) -> tuple[int, list[_Attr]]:
    """Parse the attributes of a tag from ``i`` (just after its name). Returns the offset
    just past the closing ``>`` (``-1`` if the tag never closes) and the attributes."""
    n = len(s)
    attrs: list[_Attr] = []
    while True:
        ws_start = i
        i = _match_space_run(s, i).end()
        if i < n and s[i] == "/":
            i += 1
            while i < n and (s[i] in _SPACE or s[i] == "/"):
                i += 1
            ws_start = i
        if i >= n:
            return -1, attrs
        if s[i] == ">":
            return i + 1, attrs
        name_start = i
        if s.startswith("{{", i):
            i = _skip_braces(s, i)
        else:
            i += 1  # the first character may be "=" (HTML: part of the name)
        i = _find_stop(s, _NAME_STOP, i)
        name = s[name_start:i]
        j = i
        while j < n and s[j] in _SPACE:
            j += 1
        value_start = value_end = -1
        if j < n and s[j] == "=":
            j += 1
            while j < n and s[j] in _SPACE:
                j += 1
            if j < n and s[j] in "\"'":
                value_start = j + 1
                value_end = _find_stop(s, _DQ_STOP if s[j] == '"' else _SQ_STOP, value_start)
                if value_end >= n:
                    return -1, attrs
                i = value_end + 1
            else:
                value_start = j
                value_end = i = _find_stop(s, _UNQUOTED_STOP, j)
        # Only take the whitespace before a removed attribute when something still
        # separates what precedes it from what follows it.
        strip_start = ws_start if i >= n or s[i] in _SPACE or s[i] in "/>" else name_start
        attrs.append(_Attr(name.lower(), strip_start, i, value_start, value_end))


def _attr_map(s: str, attrs: list[_Attr]) -> dict[str, _Attr]:
    found: dict[str, _Attr] = {}
    for attr in attrs:
        found.setdefault(attr.name, attr)  # HTML: the first of duplicate attributes wins
    return found


def _attr_value(s: str, attr: _Attr | None) -> str | None:
    if attr is None or attr.value_start < 0:
        return None if attr is None else ""
    return unescape_attribute(s[attr.value_start : attr.value_end])


class _PendingAnchor:
    """An ``<a>`` link whose name may still come from an ``<img alt>`` before ``</a>``."""

    __slots__ = ("start", "end", "sublink", "unsubscribe")

    def __init__(self, start: int, end: int, sublink: str | None, unsubscribe: bool) -> None:
        self.start = start
        self.end = end
        self.sublink = sublink
        self.unsubscribe = unsubscribe

    def finish(self, name: str) -> LinkSpan:
        return LinkSpan(self.start, self.end, _truncate_name(name), self.sublink, self.unsubscribe, html=True)


def _link_from_tag(s: str, tag: str, attrs: list[_Attr]) -> LinkSpan | _PendingAnchor | None:
    found = _attr_map(s, attrs)
    href = found.get("href")
    if href is None or href.value_start < 0:
        return None
    raw = s[href.value_start : href.value_end]
    if not (raw[:7].lower() == "http://" or raw[:8].lower() == "https://"):
        return None
    if _attr_value(s, found.get("data-msys-clicktrack")) == "0":
        return None
    if len(raw) > MAX_URL_BYTES // 4 and _too_long(unescape_attribute(raw)):
        return None
    sublink = _attr_value(s, found.get("data-msys-sublink")) or None
    unsubscribe = _attr_value(s, found.get("data-msys-unsubscribe")) == "1"
    name = _attr_value(s, found.get("data-msys-linkname")) or _attr_value(s, found.get("title"))
    if name:
        return LinkSpan(href.value_start, href.value_end, _truncate_name(name), sublink, unsubscribe, html=True)
    pending = _PendingAnchor(href.value_start, href.value_end, sublink, unsubscribe)
    if tag == "area":
        return pending.finish(RAW_URL)
    return pending


def _skip_markup(s: str, j: int) -> int:
    """``s[j:]`` starts with ``<!`` or ``<?``: the offset just past the comment, CDATA
    section, doctype or processing instruction there (``len(s)`` when it never closes)."""
    if s.startswith("<!--", j):
        if s.startswith(">", j + 4):  # "<!-->" and "<!--->" are whole (empty) comments
            return j + 5
        if s.startswith("->", j + 4):
            return j + 6
        end, close = s.find("-->", j + 4), 3
    elif s.startswith("<![CDATA[", j):
        end, close = s.find("]]>", j + 9), 3
    else:
        end, close = s.find(">", j + 2), 1
    return len(s) if end == -1 else end + close


def _start_tag_attributes(s: str, tag: str, name_end: int) -> tuple[int, list[_Attr]]:
    """:func:`_parse_attributes` of a start tag, skipped for a tag whose attributes cannot
    matter: no quote, ``{{`` or ``data-msys-`` before its first ``>`` (the many ``<td>``,
    ``<p class=x>``, ``<br>`` of an email) and not an ``<a>``, ``<area>`` or ``<img>``."""
    close = s.find(">", name_end) if tag not in _NEEDS_ATTRIBUTES else -1
    if close != -1 and _QUICK_TAG_BLOCKER.search(s, name_end, close) is None:
        return close + 1, []
    return _parse_attributes(s, name_end)


class _HtmlScanner:
    """One pass of :func:`scan_html` over ``s``: each ``*_at`` step takes the offset of a
    ``<`` and returns where scanning goes on (``len(s)`` to stop), recording what it found."""

    __slots__ = ("s", "n", "links", "strip", "pending", "initial_open_at", "last_body_end")

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)
        self.links: list[LinkSpan] = []
        self.strip: list[tuple[int, int]] = []
        self.pending: _PendingAnchor | None = None  # an <a> still waiting for its name
        self.initial_open_at: int | None = None
        self.last_body_end: int | None = None

    def scan(self) -> Scan:
        s, n = self.s, self.n
        i = 0
        while i < n:
            match = _TEXT_STOP.search(s, i)
            if match is None:
                break
            j = match.start()
            if s[j] == "{":
                i = _skip_braces(s, j)
            elif s.startswith("<!", j) or s.startswith("<?", j):
                i = _skip_markup(s, j)
            elif s.startswith("</", j):
                i = self.end_tag_at(j)
            else:
                i = self.start_tag_at(j)
        self.finish_pending(RAW_URL)
        self.links.sort(key=lambda link: link.start)
        return Scan(
            links=tuple(
                LinkSpan(
                    k.start, k.end, k.name, k.sublink, k.unsubscribe, k.html, i, unescape_attribute(s[k.start : k.end])
                )
                for i, k in enumerate(self.links, 1)
            ),
            strip=tuple(self.strip),
            initial_open_at=self.initial_open_at,
            open_at=n if self.last_body_end is None else self.last_body_end,
        )

    def finish_pending(self, name: str) -> None:
        if self.pending is not None:
            self.links.append(self.pending.finish(name))
            self.pending = None

    def end_tag_at(self, j: int) -> int:
        """``</...``: an ``</a>`` names a pending link ``Raw URL``, a ``</body>`` is where
        the open pixel goes (the last one wins)."""
        s = self.s
        name_match = _TAG_NAME.match(s, j + 2)
        if name_match is None:
            if s.startswith(">", j + 2):
                return j + 3
            end = s.find(">", j + 2)  # "</ x>" and the like: a bogus comment up to ">"
            return self.n if end == -1 else end + 1
        tag_end, _ = _parse_attributes(s, name_match.end())
        if tag_end < 0:
            return self.n
        tag = name_match.group().lower()
        if tag == "a":
            self.finish_pending(RAW_URL)
        elif tag == "body":
            self.last_body_end = j
        return tag_end

    def start_tag_at(self, j: int) -> int:
        """``<name ...>``: its ``data-msys-*`` attributes are stripped, then it may be a
        link, name a pending link, or be the ``<body>``; a raw-text element's content is
        skipped whole and ``<plaintext>`` ends the markup."""
        s = self.s
        name_match = _TAG_NAME.match(s, j + 1)
        if name_match is None:
            return j + 1  # a "<" that starts no tag is text
        tag = name_match.group().lower()
        tag_end, attrs = _start_tag_attributes(s, tag, name_match.end())
        if tag_end < 0:
            return self.n  # a tag cut off by the end of the part is dropped by browsers too
        for attr in attrs:
            if attr.name.startswith("data-msys-"):
                self.strip.append((attr.strip_start, attr.end))
        if tag == "a" or tag == "area":
            self.link_tag(tag, attrs)
        elif tag == "img" and self.pending is not None:
            alt = _attr_value(s, _attr_map(s, attrs).get("alt"))
            if alt:
                self.finish_pending(alt)
        elif tag == "body" and self.initial_open_at is None:
            self.initial_open_at = tag_end
        if tag in _RAW_TEXT:
            end_match = _RAW_END[tag].search(s, tag_end)
            return self.n if end_match is None else end_match.start()
        return self.n if tag == "plaintext" else tag_end

    def link_tag(self, tag: str, attrs: list[_Attr]) -> None:
        if tag == "a":
            self.finish_pending(RAW_URL)  # an <a> closes the previous one
        link = _link_from_tag(self.s, tag, attrs)
        if isinstance(link, LinkSpan):
            self.links.append(link)
        elif link is not None:
            self.pending = link


def scan_html(source: str) -> Scan:
    """Find the trackable links, the ``data-msys-*`` attributes to remove, and the pixel
    positions of an HTML part (template source or rendered HTML); the rules are the module
    docstring's (SPEC A.2, B §4.5, B §5.1)."""
    return _HtmlScanner(source).scan()


# ---------------------------------------------------------------------------------------
# text

_TEXT_URL_STOP = re.compile(r"[\s<>\"]|\{\{|\[\[")
_MARKER = re.compile(
    r"""\[\[((?:\s*[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'\]]+))*)\s*\]\]""",
    re.ASCII,
)
_MARKER_ATTR = re.compile(r"""([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'\]]+))""", re.ASCII)
_TRAILING = ".,;:!?"


def _trim_text_url(s: str, start: int, end: int) -> int:
    """Drop trailing sentence punctuation and an unbalanced closing ``)`` / ``]``."""
    while end > start:
        last = s[end - 1]
        if (
            last in _TRAILING
            or (last == ")" and s.count("(", start, end) < s.count(")", start, end))
            or (last == "]" and s.count("[", start, end) < s.count("]", start, end))
        ):
            end -= 1
        else:
            break
    return end


def scan_text(source: str) -> Scan:
    """Find the bare ``http(s)://`` URLs of a text part and the ``[[...]]`` markers to
    remove. A URL ends at whitespace, ``<``, ``>`` or ``"`` (``{{...}}`` runs belong to it);
    a marker directly after it sets its attributes and is always removed."""
    s = source
    n = len(s)
    links: list[LinkSpan] = []
    strip: list[tuple[int, int]] = []
    i = 0
    while i < n:
        scheme = _SCHEME.search(s, i)
        if scheme is None:
            break
        braces = s.find("{{", i, scheme.start())
        if braces != -1:  # {{...}} runs outside URLs are template code, not text
            i = _skip_braces(s, braces)
            continue
        start = scheme.start()
        j = scheme.end()
        marker = None
        while True:
            stop = _TEXT_URL_STOP.search(s, j)
            if stop is None:
                j = n
                break
            j = stop.start()
            token = stop.group()
            if token == "{{":
                j = _skip_braces(s, j)
            elif token == "[[":
                marker = _MARKER.match(s, j)
                if marker is not None:
                    break
                j += 2
            else:
                break
        end = j if marker is not None else _trim_text_url(s, start, j)
        attrs: dict[str, str] = {}
        if marker is not None:
            strip.append(marker.span())
            for attr in _MARKER_ATTR.finditer(marker.group(1)):
                value = next(v for v in attr.group(2, 3, 4) if v is not None)
                attrs.setdefault(attr.group(1).lower(), value)
            i = marker.end()
        else:
            i = max(end, scheme.end())
        url = s[start:end]
        if end > scheme.end() and attrs.get("data-msys-clicktrack") != "0" and not _too_long(url):
            links.append(
                LinkSpan(
                    start,
                    end,
                    _truncate_name(attrs.get("data-msys-linkname") or RAW_URL),
                    attrs.get("data-msys-sublink") or None,
                    attrs.get("data-msys-unsubscribe") == "1",
                    position=len(links) + 1,
                    written=url,
                )
            )
    return Scan(links=tuple(links), strip=tuple(strip), initial_open_at=None, open_at=None)


# ---------------------------------------------------------------------------------------
# rewriting


def _splice(source: str, edits: list[tuple[int, int, int, str]]) -> str:
    """Apply (start, order, end, text) edits; ``order`` breaks ties between inserts."""
    edits.sort(key=lambda edit: (edit[0], edit[1]))
    out: list[str] = []
    pos = 0
    for start, _order, end, text in edits:
        out.append(source[pos:start])
        out.append(text)
        pos = max(pos, end)
    out.append(source[pos:])
    return "".join(out)


def rewrite_html(
    html: str,
    wrap: Callable[[str, LinkSpan], str],
    *,
    open_pixel: str = "",
    initial_open_pixel: str = "",
) -> str:
    """Replace each link URL by ``wrap(url, span)`` (``url`` with character references
    decoded once; the result goes between the quotes as-is), remove ``data-msys-*``
    attributes, and insert the pixel HTML (``""`` = no pixel) at the scan's offsets."""
    scan = scan_html(html)
    edits = [(a, 2, b, "") for a, b in scan.strip]
    for link in scan.links:
        edits.append((link.start, 2, link.end, wrap(unescape_attribute(html[link.start : link.end]), link)))
    if initial_open_pixel and scan.initial_open_at is not None:
        edits.append((scan.initial_open_at, 0, scan.initial_open_at, initial_open_pixel))
    if open_pixel and scan.open_at is not None:
        edits.append((scan.open_at, 1, scan.open_at, open_pixel))
    return _splice(html, edits)


def rewrite_text(text: str, wrap: Callable[[str, LinkSpan], str]) -> str:
    """Replace each bare URL by ``wrap(url, span)`` and remove the ``[[...]]`` markers."""
    scan = scan_text(text)
    edits = [(a, 2, b, "") for a, b in scan.strip]
    for link in scan.links:
        edits.append((link.start, 2, link.end, wrap(text[link.start : link.end], link)))
    return _splice(text, edits)
