"""The development sink's pages: the messages the sink (``engage/devsink.py``) kept under
``ENGAGE_SINK_DIR``, and one message."""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

_NAME = re.compile(r"^[\w.-]+\.eml$")


def _sink_dir() -> Path:
    return Path(settings.ENGAGE_SINK_DIR)


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


@staff_member_required
def sink_list(request: HttpRequest) -> HttpResponse:
    directory = _sink_dir()
    files = sorted(directory.glob("*.eml"), key=lambda p: p.name, reverse=True)[:500] if directory.is_dir() else []
    messages = []
    for path in files:
        msg = _parse(path)
        messages.append({"name": path.name, "subject": msg.get("Subject", ""), "from": msg.get("From", ""),
                         "to": msg.get("X-Engage-Sink-Rcpt-To", msg.get("To", "")),
                         "received": datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.get_current_timezone())})  # fmt: skip
    return render(request, "console/sink_list.html", {"messages": messages, "directory": directory})


@staff_member_required
def sink_message(request: HttpRequest, name: str) -> HttpResponse:
    path = _sink_dir() / name
    if not _NAME.match(name) or not path.is_file():
        raise Http404("no such message in the sink")
    msg = _parse(path)
    html_part, text_part = msg.get_body(preferencelist=("html",)), msg.get_body(preferencelist=("plain",))
    html = html_part.get_content() if html_part is not None else ""
    if html:
        html = '<base target="_blank">' + html  # links open in a new tab, out of the sandbox
    context = {
        "name": name,
        "headers": [(k, v) for k, v in msg.items() if not k.startswith("X-Engage-Sink")],
        "html": html,
        "text": text_part.get_content() if text_part is not None else "",
    }
    return render(request, "console/sink_message.html", context)
