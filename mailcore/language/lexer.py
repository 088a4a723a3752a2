"""Template-level lexing: find tags, apply the whitespace rules, cut at link offsets.

The output is a flat, position-ordered list of items that ``compiler`` turns into a node
tree. All the work here happens once per template; nothing in this module runs per
recipient.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from mailcore.links import LinkSpan, Scan

# Tag content: anything but quotes and "}}", with quoted strings skipped as a whole.
_CONTENT_RE = re.compile(r"""(?:[^'"}]|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\}(?!\}))*""", re.DOTALL)
_STMT_RE = re.compile(r"\s*(if|elseif|else|end|each)(?![A-Za-z0-9_])")
_RIGHT_ALONE_RE = re.compile(r"[ \t]*(?:\r?\n)?")
_RIGHT_WS_RE = re.compile(r"[ \t]*")
_TAG_RUN_RE = re.compile(r"\{\{\{?.*?\}\}\}?")
_URL_STOP = frozenset(" \t\r\n\f\v\"'<>")
_URL_STOP_RE = re.compile("[" + re.escape("".join(sorted(_URL_STOP))) + "]")
_URL_START_RE = re.compile(r"https?://", re.IGNORECASE | re.ASCII)


class LexError(Exception):
    """A malformed tag, with the source offset it refers to."""

    def __init__(self, detail: str, pos: int) -> None:
        self.detail = detail
        self.pos = pos
        super().__init__(detail)


@dataclass(slots=True)
class Text:
    """A literal run of the source, [start, end)."""

    start: int
    end: int


@dataclass(slots=True)
class Tag:
    """A ``{{ }}`` or ``{{{ }}}`` tag; content is [cstart, cend)."""

    start: int
    end: int
    cstart: int
    cend: int
    triple: bool
    keyword: str | None  # statement keyword, None for an expression
    url: bool = False  # the heuristic found it inside a literal http(s):// URL


@dataclass(slots=True)
class Marker:
    """A zero-width event: 'link_start' / 'link_end' (with span) or 'pixel' (with kind)."""

    pos: int
    kind: str
    span: LinkSpan | None = None
    pixel: str | None = None


def lex(source: str) -> list[Text | Tag]:
    """Split ``source`` into literal text and tags (raises LexError on an unclosed tag)."""
    out: list[Text | Tag] = []
    pos = 0
    n = len(source)
    find = source.find
    while True:
        i = find("{{", pos)
        if i < 0:
            if pos < n:
                out.append(Text(pos, n))
            return out
        if i > pos:
            out.append(Text(pos, i))
        triple = source.startswith("{{{", i)
        cstart = i + (3 if triple else 2)
        m = cast("re.Match[str]", _CONTENT_RE.match(source, cstart))  # "(...)*" always matches
        cend = m.end()
        close = "}}}" if triple else "}}"
        if not source.startswith(close, cend):
            if cend < n and source[cend] in "'\"":
                raise LexError("unfinished string", cend)
            if triple and source.startswith("}}", cend):
                raise LexError("'}}}' expected to close '{{{'", i)
            raise LexError("unclosed tag: '" + close + "' expected", i)
        end = cend + len(close)
        content = source[cstart:cend]
        sm = _STMT_RE.match(content)
        out.append(Tag(i, end, cstart, cend, triple, sm.group(1) if sm else None))
        pos = end


def apply_whitespace(source: str, items: list[Text | Tag]) -> None:
    """Apply the statement whitespace rules in place.

    A line holding only statement tags and whitespace disappears with its LF/CRLF; after
    any statement tag, whitespace up to the end of the line is dropped. Expressions never
    trigger either rule.
    """
    n_items = len(items)
    alone_flags: list[bool] = [False] * n_items
    for k, it in enumerate(items):
        if not isinstance(it, Tag) or it.keyword is None:
            continue
        alone = True
        j = k - 1
        while j >= 0:
            p = items[j]
            if isinstance(p, Tag):
                if p.keyword is None:
                    alone = False
                    break
            else:
                seg = source[p.start : p.end]
                nl = seg.rfind("\n")
                if seg[nl + 1 :].strip(" \t"):
                    alone = False
                    break
                if nl >= 0:
                    break
            j -= 1
        if alone:
            j = k + 1
            while j < n_items:
                p = items[j]
                if isinstance(p, Tag):
                    if p.keyword is None:
                        alone = False
                        break
                else:
                    seg = source[p.start : p.end]
                    nl = seg.find("\n")
                    head = seg if nl < 0 else seg[:nl]
                    if head.strip(" \t\r"):
                        alone = False
                        break
                    if nl >= 0:
                        break
                j += 1
        alone_flags[k] = alone
    for k, it in enumerate(items):
        if not isinstance(it, Tag) or it.keyword is None:
            continue
        if alone_flags[k]:
            if k > 0 and isinstance(items[k - 1], Text):
                p = items[k - 1]
                e = p.end
                while e > p.start and source[e - 1] in " \t":
                    e -= 1
                p.end = e
            if k + 1 < n_items and isinstance(items[k + 1], Text):
                p = items[k + 1]
                m = cast("re.Match[str]", _RIGHT_ALONE_RE.match(source, p.start, p.end))  # "...*" matches
                p.start = m.end()
        elif k + 1 < n_items and isinstance(items[k + 1], Text):
            p = items[k + 1]
            m = cast("re.Match[str]", _RIGHT_WS_RE.match(source, p.start, p.end))  # "...*" matches
            e = m.end()
            last = k + 2 == n_items
            if source.startswith("\n", e) or source.startswith("\r\n", e) or (e == p.end and last):
                p.start = e
    items[:] = [it for it in items if not isinstance(it, Text) or it.end > it.start]


def mark_url_context(source: str, items: list[Text | Tag]) -> None:
    """Flag expression tags that sit inside a literal ``http(s)://`` URL on their line.

    A tag is in a URL when its line, up to the tag, with every ``{{...}}`` run (``_TAG_RUN_RE``,
    scanned from the line's start) read as one ``x``, holds ``http://`` or ``https://`` (ASCII,
    any case) and no ``_URL_STOP`` character after the last of them. Linear in ``source``: each
    line is scanned once, however many tags it holds (it was re-read up to each tag: 8,000
    links on one line took 34 s).
    """
    line_end = -1
    seen = 0  # the previous tag's start: the current line's start is searched for from there
    runs: Iterator[re.Match[str]] = iter(())
    pending: re.Match[str] | None = None
    done, last_url, stopped = 0, -1, False  # the line read up to done: the last URL start, stopped after it
    for it in items:
        if not isinstance(it, Tag) or it.keyword is not None:
            continue
        if it.start > line_end:  # a new line: its runs, and nothing read yet
            line_start = source.rfind("\n", seen, it.start) + 1  # 0 on the first line
            line_end = source.find("\n", it.start)
            line_end = len(source) if line_end < 0 else line_end
            runs = _TAG_RUN_RE.finditer(source, line_start, line_end)
            pending = next(runs, None)
            done, last_url, stopped = line_start, -1, False
        seen = it.start
        # Runs that end before the tag read the same whatever follows them: commit them.
        while pending is not None and pending.end() <= it.start:
            last_url, stopped = _url_state(source, done, pending.start(), last_url, stopped)
            done = pending.end()  # the run reads as "x": no URL start, no stop character
            pending = next(runs, None)
        # The rest, up to the tag, as plain text: a run that does not end before the tag is
        # no run of the line up to it (its "}}" comes later).
        url_at, url_stopped = _url_state(source, done, it.start, last_url, stopped)
        if url_at >= 0 and not url_stopped:
            it.url = True


def _url_state(source: str, start: int, end: int, last_url: int, stopped: bool) -> tuple[int, bool]:
    """(where the last ``http(s)://`` starts, whether a stop character follows it) after the
    plain text ``source[start:end]`` is read on, given the state before it."""
    for found in _URL_START_RE.finditer(source, start, end):
        last_url, stopped, start = found.start(), False, found.end()
    if last_url >= 0 and not stopped:
        stopped = _URL_STOP_RE.search(source, start, end) is not None
    return last_url, stopped


def cut(source: str, items: list[Text | Tag], scan: Scan) -> list[Text | Tag | Marker]:
    """Merge a link scan into the item list.

    Stripped ranges vanish (with any tag entirely inside them), link spans become
    link_start/link_end markers, pixel offsets become pixel markers. Offsets that fall
    inside a tag are ignored (strip ranges, links) or moved past the tag (pixels), so a
    scanner can never split a tag.
    """
    tags = [it for it in items if isinstance(it, Tag)]
    tag_starts = [t.start for t in tags]

    def inside_tag(pos: int) -> Tag | None:
        k = bisect.bisect_right(tag_starts, pos) - 1
        if k >= 0 and tags[k].start < pos < tags[k].end:
            return tags[k]
        return None

    strips = [(s, e) for s, e in scan.strip if e > s and inside_tag(s) is None and inside_tag(e) is None]
    markers: list[Marker] = []
    for span in scan.links:
        if inside_tag(span.start) is None and inside_tag(span.end) is None and span.end > span.start:
            markers.append(Marker(span.start, "link_start", span=span))
            markers.append(Marker(span.end, "link_end", span=span))
    for kind, pos in (
        ("initial_open", getattr(scan, "initial_open_at", None)),
        ("open", getattr(scan, "open_at", None)),
    ):
        if pos is None:
            continue
        pos = min(max(pos, 0), len(source))
        t = inside_tag(pos)
        if t is not None:
            pos = t.end
        for s, e in strips:
            if s < pos < e:
                pos = e
        markers.append(Marker(pos, "pixel", pixel=kind))

    cuts = sorted({m.pos for m in markers})
    out: list[tuple[int, int, Text | Tag | Marker]] = []
    order = {"link_end": 0, "pixel": 1, "link_start": 2}
    for m in markers:
        out.append((m.pos, order[m.kind], m))
    # A tag vanishes when one stripped range holds it whole: with the ranges sorted by start,
    # the furthest end among those starting at or before the tag says so (n log n, not n*m).
    by_start = sorted(strips)
    strip_starts = [s for s, _ in by_start]
    reach: list[int] = []
    for _, e in by_start:
        reach.append(max(e, reach[-1]) if reach else e)
    # Text loses the union of the ranges: merge them into disjoint sorted intervals.
    merged: list[list[int]] = []
    for s, e in by_start:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    merged_ends = [e for _, e in merged]
    for it in items:
        if isinstance(it, Tag):
            k = bisect.bisect_right(strip_starts, it.start) - 1
            if k >= 0 and reach[k] >= it.end:
                continue
            out.append((it.start, 3, it))
            continue
        pieces = []
        a = it.start
        j = bisect.bisect_right(merged_ends, it.start)  # the first interval ending after it.start
        while j < len(merged) and merged[j][0] < it.end:
            s, e = merged[j]
            if a < s:
                pieces.append((a, s))
            a = max(a, e)
            j += 1
        if a < it.end:
            pieces.append((a, it.end))
        for a, b in pieces:
            start = a
            i = bisect.bisect_right(cuts, a)
            while i < len(cuts) and cuts[i] < b:
                out.append((start, 3, Text(start, cuts[i])))
                start = cuts[i]
                i += 1
            if b > start:
                out.append((start, 3, Text(start, b)))
    out.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in out]
