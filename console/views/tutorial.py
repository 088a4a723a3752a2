"""The README's tutorial in the console: ``/tutorial/``, linked from the overview while nothing
has been sent. The section of ``README.md`` headed :data:`SECTION` (the image holds the README:
``Dockerfile``'s ``COPY . .``), shown as it is written; 404 when the README or the section is
missing.

The README is written for ``scripts/run``'s defaults: the page shows the commands with the
address it was served from instead (the request's scheme and host, which ``ALLOWED_HOSTS``
has already let through), and the sink folder ``ENGAGE_SINK_DIR`` names, so an instance on
another port (``ENGAGE_PORT``) or folder is the one the commands reach."""

from __future__ import annotations

import shlex
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

#: The README's heading of the tutorial (its ``## `` line).
SECTION = "Tutorial with curl"
#: The address and the sink folder the README's tutorial is written for (``scripts/run``'s defaults).
README_ORIGIN = "http://127.0.0.1:8000"
README_SINK_DIR = "var/sink/"


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


def section_for(section: str, *, origin: str, sink_dir: str) -> str:
    """PURE: the tutorial ``section`` with :data:`README_ORIGIN` replaced by ``origin``
    (``scheme://host[:port]``, no trailing slash) and :data:`README_SINK_DIR` by ``sink_dir``."""
    return section.replace(README_ORIGIN, origin).replace(README_SINK_DIR, sink_dir)


def _sink_dir() -> str:
    """``ENGAGE_SINK_DIR`` as the tutorial's ``ls`` names it: relative to the project root
    when inside it (the README's ``var/sink/``), else absolute; with a trailing slash."""
    folder = Path(settings.ENGAGE_SINK_DIR)
    try:
        shown = str(folder.relative_to(settings.BASE_DIR))
    except ValueError:
        shown = str(folder)
    return shlex.quote(shown.rstrip("/") + "/")


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def tutorial(request: HttpRequest) -> HttpResponse:
    try:
        text = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    except OSError:
        raise Http404("the README is not here") from None
    section = readme_section(text, SECTION)
    if not section:
        raise Http404("the README has no tutorial")
    origin = request.build_absolute_uri("/").rstrip("/")
    shown = section_for(section, origin=origin, sink_dir=_sink_dir())
    context = {
        "heading": SECTION,
        "section": shown,
        "origin": origin,
        "tracking_base_url": settings.ENGAGE_TRACKING_BASE_URL,
    }
    return render(request, "console/tutorial.html", context)
