"""The console's pages: the one list the overview (``/``), the admin index and the 404 page
show. The navigation bar of ``engage/templates/engage/base.html`` names the same pages
(``tests/console/test_overview.py`` checks that the two agree)."""

from __future__ import annotations

from typing import Any, NamedTuple

#: The permission sending needs beyond staff status: ``add`` on ``transmissions.Transmission``
#: (``console.views.permissions``; a superuser has all).
SEND = "transmissions.add_transmission"


class Page(NamedTuple):
    title: str
    url: str  # a path on the web process (API docs included)
    what: str  # one line: what a person finds there
    perm: str = ""  # a permission the page needs beyond staff status, "" for none


PAGES: tuple[Page, ...] = (
    Page("Report", "/report/", "deliverability and engagement over a date range, per campaign, template and link"),
    Page("Messages", "/messages/", "what happened to one recipient's message: search, then its timeline"),
    Page("Transmissions", "/transmissions/", "every send with its state and progress; cancel a scheduled one"),
    Page("Send", "/transmissions/new/", "send a published template to a list or a few addresses, now or later", SEND),
    Page("Templates", "/admin/templates_app/template/", "create and edit templates, preview, publish, test send"),
    Page("Sink", "/report/sink/", "the mail the development SMTP sink received (scripts/run's relay)"),
    Page("Admin", "/admin/", "API keys, recipient lists, the suppression list, tracking consent, users"),
    Page("API docs", "/api/v1/docs", "every /api/v1 operation, browsable (OpenAPI: /api/v1/openapi.json)"),
)


def pages_for(user: Any) -> tuple[Page, ...]:
    """:data:`PAGES` less those ``user`` (a Django user) lacks the permission for: the lists
    of pages a person is shown link only to pages they may use."""
    return tuple(page for page in PAGES if not page.perm or user.has_perm(page.perm))
