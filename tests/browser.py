"""A real browser for the console's page tests (issue 15): Playwright driving Debian's
chromium (``apt-get install chromium``; `.ci/run` installs it), signed in as a staff user.

Use the ``browser_page`` fixture (registered in tests/conftest.py) with ``live_server``::

    def test_x(live_server, staff_user, browser_page):   # staff_user BEFORE browser_page
        page = browser_page(live_server.url + "/messages/")   # signs in on the way
        ...
        screenshot(page, "messages")                          # kept under artifacts/

Tests using it should be marked ``@pytest.mark.slow`` and ``@needs_chromium``. Name any fixture
that touches the database before ``browser_page``: once Playwright runs, its event loop is this
thread's, and Django refuses synchronous queries from it (``SynchronousOnlyOperation``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: Where screenshots go: CI keeps this folder as an artifact.
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI: apt-get install -y chromium)"
)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
STAFF = ("boss", "pw-for-tests")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/<name>.png`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, username: str = STAFF[0], password: str = STAFF[1]) -> None:
    """Fill Django's sign-in form on the page the browser was sent to."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[type=submit]")


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    """A staff user (``STAFF``) that can sign in to the console and the admin."""
    return django_user_model.objects.create_user(STAFF[0], password=STAFF[1], is_staff=True, is_superuser=True)


@pytest.fixture
def browser_page() -> Iterator[Callable[[str], Any]]:
    """``open(url)`` → a Playwright page at ``url``, signed in as ``STAFF`` when the page asks.
    One browser per test, closed after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})

        def open_(url: str) -> Any:
            page.goto(url)
            if page.locator("#id_username").count():
                sign_in(page)
                page.wait_for_load_state()
            return page

        try:
            yield open_
        finally:
            browser.close()
