"""Compile a whole transmission ``content`` object once and render it per recipient.

Part names follow SparkPost's error messages: "html", "text", "amp_html",
"Header:From", "Header:Subject", "Header:Reply-To" and "Header:<Name>" for custom
headers. Compilation order (which error is reported first): from, subject, reply_to,
text, html, amp_html, headers. Keys that are not template text (attachments, ...) are
passed through by ``render`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .compiler import DEFAULT_RENDER_LIMITS, CompiledPart, RenderLimits, Tracker, compile_part
from .errors import MessageTooLarge, TemplateSyntaxError

if TYPE_CHECKING:
    from mailcore.links import Scan


class CompiledContent:
    """All template parts of one content object, compiled."""

    __slots__ = (
        "content",
        "from_email",
        "from_name",
        "from_is_object",
        "subject",
        "reply_to",
        "text",
        "html",
        "amp_html",
        "headers",
    )

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content
        self.from_email: CompiledPart | None = None
        self.from_name: CompiledPart | None = None
        self.from_is_object = False
        self.subject: CompiledPart | None = None
        self.reply_to: CompiledPart | None = None
        self.text: CompiledPart | None = None
        self.html: CompiledPart | None = None
        self.amp_html: CompiledPart | None = None
        self.headers: dict[str, CompiledPart] = {}

    def render(
        self,
        data: dict[str, Any],
        tracker: Tracker | None = None,
        *,
        limits: RenderLimits = DEFAULT_RENDER_LIMITS,
        max_bytes: int | None = None,
    ) -> dict[str, Any]:
        """Render every part for one recipient; raises TemplateRenderError.

        ``max_bytes`` caps the whole rendered message: the UTF-8 bytes of every rendered
        part plus each custom header's name. Each part renders with what is left of it as
        its budget, so a render stops (``MessageTooLarge``, naming ``max_bytes`` and the part)
        as soon as the running total passes the cap, never after building the whole output.
        """
        out = dict(self.content)
        used = 0
        if limits.message_loops is None:
            limits = limits.for_message()  # one loop budget for every part and header

        def part(compiled: CompiledPart, trk: Tracker | None = None) -> str:
            nonlocal used
            if max_bytes is None:
                return compiled.render(data, trk, limits=limits)
            try:
                s = compiled.render(data, trk, limits=limits, budget=max_bytes - used)
            except MessageTooLarge:
                raise MessageTooLarge(compiled.part, max_bytes) from None
            used += utf8_size(s)
            if used > max_bytes:
                raise MessageTooLarge(compiled.part, max_bytes)
            return s

        if self.from_email is not None:
            email = part(self.from_email)
            if self.from_is_object:
                frm = dict(self.content["from"])
                frm["email"] = email
                if self.from_name is not None:
                    frm["name"] = part(self.from_name)
                out["from"] = frm
            else:
                out["from"] = email
        if self.subject is not None:
            out["subject"] = part(self.subject)
        if self.reply_to is not None:
            out["reply_to"] = part(self.reply_to)
        if self.text is not None:
            out["text"] = part(self.text, tracker)
        if self.html is not None:
            out["html"] = part(self.html, tracker)
        if self.amp_html is not None:
            out["amp_html"] = part(self.amp_html)
        if self.headers:
            headers = {}
            for name, compiled in self.headers.items():
                used += utf8_size(name)
                headers[name] = part(compiled)
            out["headers"] = headers
        return out


def utf8_size(s: str) -> int:
    """Bytes of ``s`` in UTF-8 (lone surrogates from JSON escapes count as 3, not an error)."""
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def _part(source: Any, part: str, mode: str, scan: Scan | None = None) -> CompiledPart:
    if not isinstance(source, str):
        raise TemplateSyntaxError(part, 1, "value must be a string")
    return compile_part(source, part=part, mode=mode, scan=scan)


def compile_content(
    content: dict[str, Any],
    *,
    scan_html: Callable[[str], Scan] | None = None,
    scan_text: Callable[[str], Scan] | None = None,
) -> CompiledContent:
    """Compile the template text of ``content``; raises the first TemplateSyntaxError.

    ``scan_html`` / ``scan_text`` are the link scanners of mailcore/links.py; when given,
    links and pixel slots are located once here so rendering needs no HTML parsing.
    """
    cc = CompiledContent(content)
    frm = content.get("from")
    if isinstance(frm, dict):
        cc.from_is_object = True
        cc.from_email = _part(frm.get("email", ""), "Header:From", "header")
        if frm.get("name") is not None:
            cc.from_name = _part(frm["name"], "Header:From", "header")
    elif frm is not None:
        cc.from_email = _part(frm, "Header:From", "header")
    if content.get("subject") is not None:
        cc.subject = _part(content["subject"], "Header:Subject", "header")
    if content.get("reply_to") is not None:
        cc.reply_to = _part(content["reply_to"], "Header:Reply-To", "header")
    text = content.get("text")
    if text is not None:
        cc.text = _part(text, "text", "text", scan_text(text) if scan_text and isinstance(text, str) else None)
    html = content.get("html")
    if html is not None:
        cc.html = _part(html, "html", "html", scan_html(html) if scan_html and isinstance(html, str) else None)
    if content.get("amp_html") is not None:
        cc.amp_html = _part(content["amp_html"], "amp_html", "html")
    headers = content.get("headers") or {}
    if isinstance(headers, dict):
        for name, value in headers.items():
            cc.headers[name] = _part(value, f"Header:{name}", "header")
    return cc
