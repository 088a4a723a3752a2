"""The README's tutorial in the console: ``/tutorial/``, linked from the overview while nothing
has been sent. The section of ``README.md`` headed :data:`SECTION` (the image holds the README:
``Dockerfile``'s ``COPY . .``), shown as it is written; 404 when the README or the section is
missing."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

#: The README's heading of the tutorial (its ``## `` line).
SECTION = "Tutorial with curl"


def readme_section(text: str, heading: str) -> str:
    """PURE: the lines of the Markdown ``text`` under its ``## heading`` line, up to the next
    ``## `` heading (``###`` ones are inside), without code fences (```` ``` ```` lines),
    stripped; "" when there is no such heading."""
    lines = text.splitlines()
    try:
        start = lines.index(f"## {heading}") + 1
    except ValueError:
        return ""
    end = next((n for n in range(start, len(lines)) if lines[n].startswith("## ")), len(lines))
    return "\n".join(line for line in lines[start:end] if not line.startswith("```")).strip()


@staff_member_required
def tutorial(request: HttpRequest) -> HttpResponse:
    try:
        text = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    except OSError:
        raise Http404("the README is not here") from None
    section = readme_section(text, SECTION)
    if not section:
        raise Http404("the README has no tutorial")
    return render(request, "console/tutorial.html", {"heading": SECTION, "section": section})
