"""Compile a whole transmission ``content`` object once and render it per recipient.

Part names follow SparkPost's error messages: "html", "text", "amp_html",
"Header:From", "Header:Subject", "Header:Reply-To" and "Header:<Name>" for custom
headers. Compilation order (which error is reported first): from, subject, reply_to,
text, html, amp_html, headers. Keys that are not template text (attachments, ...) are
passed through by ``render`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compiler import DEFAULT_LIMITS, CompiledPart, Limits, Tracker, compile_part
from .errors import TemplateSyntaxError


class CompiledContent:
    """All template parts of one content object, compiled."""

    __slots__ = ("content", "from_email", "from_name", "from_is_object", "subject",
                 "reply_to", "text", "html", "amp_html", "headers")

    def __init__(self, content: dict) -> None:
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

    def render(self, data: dict, tracker: Tracker | None = None, *,
               limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
        """Render every part for one recipient; raises TemplateRenderError."""
        out = dict(self.content)
        if self.from_email is not None:
            email = self.from_email.render(data, limits=limits)
            if self.from_is_object:
                frm = dict(self.content["from"])
                frm["email"] = email
                if self.from_name is not None:
                    frm["name"] = self.from_name.render(data, limits=limits)
                out["from"] = frm
            else:
                out["from"] = email
        if self.subject is not None:
            out["subject"] = self.subject.render(data, limits=limits)
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to.render(data, limits=limits)
        if self.text is not None:
            out["text"] = self.text.render(data, tracker, limits=limits)
        if self.html is not None:
            out["html"] = self.html.render(data, tracker, limits=limits)
        if self.amp_html is not None:
            out["amp_html"] = self.amp_html.render(data, limits=limits)
        if self.headers:
            out["headers"] = {name: part.render(data, limits=limits)
                              for name, part in self.headers.items()}
        return out


def _part(source: Any, part: str, mode: str, scan: Any = None) -> CompiledPart:
    if not isinstance(source, str):
        raise TemplateSyntaxError(part, 1, "value must be a string")
    return compile_part(source, part=part, mode=mode, scan=scan)


def compile_content(content: dict, *, scan_html: Callable[[str], Any] | None = None,
                    scan_text: Callable[[str], Any] | None = None) -> CompiledContent:
    """Compile the template text of ``content``; raises the first TemplateSyntaxError.

    ``scan_html`` / ``scan_text`` are the link scanners of tracking/links.py; when given,
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
        cc.text = _part(text, "text", "text",
                        scan_text(text) if scan_text and isinstance(text, str) else None)
    html = content.get("html")
    if html is not None:
        cc.html = _part(html, "html", "html",
                        scan_html(html) if scan_html and isinstance(html, str) else None)
    if content.get("amp_html") is not None:
        cc.amp_html = _part(content["amp_html"], "amp_html", "html")
    headers = content.get("headers") or {}
    if isinstance(headers, dict):
        for name, value in headers.items():
            cc.headers[name] = _part(value, f"Header:{name}", "header")
    return cc
