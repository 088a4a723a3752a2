"""The development sink's pages (issue 15, Deliver 6): the messages the sink
(``engage/devsink.py``) kept under ``ENGAGE_SINK_DIR``, paged and searched through the sink's
index (``console/sink_mailbox.py``), and one message: its headers, its HTML in a sandboxed
frame that loads nothing remote unless asked, its text, its raw source, a link to its events.

Viewing a message records no open and no click: the HTML is served by its own URL
(:func:`sink_message_html`) under :func:`preview_policy`, which lets the browser load no image
but ``data:`` ones (an open pixel is an image), no style sheet, font, script or frame, and
submit no form, until the person asks for images. Links open in a new tab when clicked: a
click is the person's choice.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Page, Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from console.sink_mailbox import MAX_PARTS, Entry, Mailbox, header_summary, message_path, message_read, read_head
from transmissions.selectors import message_transmission_id

#: Messages on one page of the list.
PAGE_SIZE = 50
#: Longest search text kept (characters); longer input is cut.
MAX_SEARCH_CHARS = 200
_MESSAGE_ID = re.compile(r"<([0-9a-f]{20})@")
# The start of any <meta> tag: a browser makes a meta element of nothing else (tag names are
# ASCII, never entity-decoded), however its attributes are written.
_META = re.compile(r"<(?=meta)", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.I)


def preview_policy(*, images: bool) -> str:
    """The Content-Security-Policy of a message's HTML preview: nothing loads but inline
    styles and ``data:`` images (every remote image too when ``images``), no script runs, no
    form is sent, and the document is sandboxed even when opened on its own (popups allowed,
    so a clicked link opens in a new tab outside the sandbox)."""
    return "; ".join([
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src * data:" if images else "img-src data:",
        "form-action 'none'",
        "frame-ancestors 'self'",
        "sandbox allow-popups allow-popups-to-escape-sandbox",
    ])  # fmt: skip


def _sink_dir() -> Path:
    return Path(settings.ENGAGE_SINK_DIR)


def _received(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.get_current_timezone())


def _search_text(request: HttpRequest, name: str) -> str:
    return request.GET.get(name, "").strip()[:MAX_SEARCH_CHARS]


def _row(entry: Entry) -> dict[str, Any]:
    summary = entry.summary
    return {"name": entry.name, "received": _received(entry.mtime_ns), "to": summary.rcpt_to or summary.to_header,
            "from": summary.from_header or summary.mail_from, "subject": summary.subject}  # fmt: skip


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def sink_list(request: HttpRequest) -> HttpResponse:
    """``GET /report/sink/?to=&subject=&page=``: the sink's messages, newest first,
    :data:`PAGE_SIZE` a page; ``to`` (envelope recipient or To header) and ``subject`` are
    case-insensitive substrings. A page number that is not one shows the first page, one past
    the end the last."""
    directory = _sink_dir()
    recipient, subject = _search_text(request, "to"), _search_text(request, "subject")
    with Mailbox(directory) as mailbox:
        mailbox.sync()
        page: Page[Entry] = Paginator(mailbox.search(recipient=recipient, subject=subject), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        rows = [_row(entry) for entry in page.object_list]
        total = page.paginator.count

    def link(number: int) -> str:
        return "?" + urlencode({key: value for key, value in (("to", recipient), ("subject", subject),
                                                               ("page", str(number))) if value})  # fmt: skip

    context = {
        "directory": directory,
        "messages": rows,
        "page": page,
        "to": recipient,
        "subject": subject,
        "searching": bool(recipient or subject),
        "first": f"{page.start_index():,}",
        "last": f"{page.end_index():,}",
        "total": f"{total:,}",
        "pages": f"{page.paginator.num_pages:,}",
        "links": {
            "first": link(1) if page.number > 1 else "",
            "previous": link(page.number - 1) if page.has_previous() else "",
            "next": link(page.number + 1) if page.has_next() else "",
            "last": link(page.paginator.num_pages) if page.number < page.paginator.num_pages else "",
        },
    }
    return render(request, "console/sink_list.html", context)


def _path_or_404(name: str) -> Path:
    path = message_path(_sink_dir(), name)
    if path is None:
        raise Http404("no such message in the sink")
    return path


def _events_link(rcpt_to: str, message_id_header: str) -> str:
    """The console's message events search for this message: its recipient, and its
    transmission when the Message-ID is one Engage wrote (``<20 hex@domain>``) for a message
    still stored."""
    addresses = [address for _name, address in getaddresses([rcpt_to]) if address]
    params = {"recipients": addresses[0]} if addresses else {}
    found = _MESSAGE_ID.search(message_id_header)
    transmission_id = message_transmission_id(message_id=found.group(1)) if found else None
    if transmission_id is not None:
        params["transmissions"] = str(transmission_id)
    return "/messages/?" + urlencode(params)


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def sink_message(request: HttpRequest, name: str) -> HttpResponse:
    """``GET /report/sink/<name>?images=1``: one message: envelope, headers, the HTML in a
    sandboxed frame (:func:`sink_message_html`; remote images only with ``images=1``), the
    text, links to the raw source and to its events. 404 for a name that is not a message."""
    path = _path_or_404(name)
    try:
        reading, summary, stat = message_read(path), header_summary(read_head(path)), path.stat()
    except OSError:
        raise Http404("the message cannot be read") from None
    images = request.GET.get("images") == "1"
    context = {
        "name": name,
        "mail_from": summary.mail_from,
        "rcpt_to": summary.rcpt_to,
        "received": _received(stat.st_mtime_ns),
        "size": f"{stat.st_size:,}",
        "headers": reading.headers,
        "html": bool(reading.html),
        "text": reading.text,
        "problem": reading.problem,
        "parts_cut": reading.parts_cut,
        "max_parts": MAX_PARTS,
        "images": images,
        "events": _events_link(summary.rcpt_to or summary.to_header, summary.message_id),
    }
    return render(request, "console/sink_message.html", context)


def _with_base(html: str) -> str:
    """The message's HTML with ``<base target="_blank">`` first in its head (links open in a
    new tab, out of the sandbox) and no meta element: every ``<meta`` becomes ``<x-meta``, an
    unknown element that does nothing, so no ``http-equiv=refresh`` (a navigation the preview
    would make on its own) survives however it is written (entities, quoting, attribute
    order), and nothing is removed, so no two pieces can join into a new tag. The response's
    charset is in its Content-Type. Behind this, the preview is sandboxed without scripts
    (:func:`preview_policy`), where browsers ignore a meta refresh anyway."""
    html = _META.sub("<x-", html)
    base = '<base target="_blank">'
    if head := _HEAD.search(html):
        return html[: head.end()] + base + html[head.end() :]
    if doctype := _DOCTYPE.match(html):  # after the doctype, so the page keeps its standards mode
        return html[: doctype.end()] + base + html[doctype.end() :]
    return base + html


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
@xframe_options_sameorigin
def sink_message_html(request: HttpRequest, name: str) -> HttpResponse:
    """``GET /report/sink/<name>/html?images=1``: the message's HTML body (UTF-8), for the
    sandboxed frame of its page, under :func:`preview_policy`; 404 when it has none."""
    try:
        reading = message_read(_path_or_404(name))
    except OSError:
        raise Http404("the message cannot be read") from None
    if not reading.html:
        raise Http404("the message has no HTML part")
    response = HttpResponse(_with_base(reading.html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = preview_policy(images=request.GET.get("images") == "1")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@staff_member_required
@require_safe  # a reading page: GET and HEAD alone (others 405)
def sink_message_raw(request: HttpRequest, name: str) -> FileResponse:
    """``GET /report/sink/<name>/raw``: the file as the sink kept it (the envelope fields,
    then the message as received), as an attachment of type ``message/rfc822``."""
    path = _path_or_404(name)
    try:
        handle = path.open("rb")
    except OSError:
        raise Http404("the message cannot be read") from None
    return FileResponse(handle, as_attachment=True, filename=name, content_type="message/rfc822")
