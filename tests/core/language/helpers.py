"""Stand-ins shared by the language tests: a tiny HTML link scanner and a tracker that records
the links it is asked to rewrite."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakeSpan:
    start: int
    end: int
    name: str = "Raw URL"
    sublink: str | None = None
    unsubscribe: bool = False


@dataclass(frozen=True)
class FakeScan:
    links: tuple = ()
    strip: tuple = ()
    initial_open_at: int | None = None
    open_at: int | None = None


_HREF = re.compile(r'href="(https?://[^"]*)"')
_MSYS = re.compile(r' data-msys-[a-z]+="[^"]*"')


def fake_scan_html(source: str) -> FakeScan:
    """A tiny stand-in for mailcore.links.scan_html (quoted hrefs only)."""
    links = tuple(FakeSpan(m.start(1), m.end(1)) for m in _HREF.finditer(source))
    strip = tuple((m.start(), m.end()) for m in _MSYS.finditer(source))
    body = re.search(r"<body[^>]*>", source)
    close = source.rfind("</body>")
    return FakeScan(links, strip, body.end() if body else None, close if close >= 0 else len(source))


@dataclass
class RecordingTracker:
    seen: list = field(default_factory=list)
    dynamic_compiles: int = 0

    def link(self, url: str, span: object) -> str:
        self.seen.append(url)
        return f"https://t.example/f/{len(self.seen)}"

    def pixel(self, kind: str) -> str:
        return f"<img {kind}>"
