"""The development sink in a real browser (issue 15, Deliver 6): a thousand messages listed,
searched and one opened, and viewing it records no open until the person loads images."""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from console.sink_mailbox import Mailbox
from tests.browser import needs_chromium, screenshot
from tests.console.helpers import LONG_URL, REFRESH_VARIANTS, sink_fill, sink_message


@pytest.mark.slow
@needs_chromium
def test_a_thousand_messages_listed_searched_and_one_read_without_recording_an_open(
    live_server,
    staff_user,
    settings,
    tmp_path,
    browser_page,  # the user first: Playwright's loop refuses the ORM
):
    from tracking.events import events_redis
    from tracking.signing import tracking_signer

    settings.ENGAGE_SINK_DIR = tmp_path
    settings.ENGAGE_EVENT_STREAM = stream = f"engage:test:sink:{uuid.uuid4().hex}"
    tokens = tracking_signer().for_message(message_id="0000000000000000abcd", transmission_id="7",
                                           rcpt_to="ada@example.org", issued_at=int(time.time()))  # fmt: skip
    pixel = f"{live_server.url}/q/{tokens.open()}"
    sink_fill(tmp_path, 999)
    _rcpt, data = sink_message(
        1000, html=f'<p>Hello Ada</p><p><a href="{LONG_URL}">Track your order</a></p><img src="{pixel}" alt="">'
    )
    data = data.replace(b"user1000@example.org", b"ada@example.org").replace(b"Password reset 1000", b"Your receipt")
    with Mailbox(tmp_path) as mailbox:
        mailbox.deliver(mail_from="bounces@example.com", rcpt_tos=["ada@example.org"], data=data)
    try:
        page = browser_page(f"{live_server.url}/report/sink/")
        assert page.inner_text("#counts") == "1–50 of 1,000"
        assert page.locator("#sink tbody tr").count() == 50
        assert "Page 1 of 20" in page.inner_text(".pager")
        loads_ms = []
        for _ in range(2):  # the list again, its index warm: the browser's own measure, best of two
            page.reload()
            loads_ms.append(page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd"))
        assert min(loads_ms) < 1000, loads_ms
        screenshot(page, "sink")

        failed: list[tuple[str, str | None]] = []
        responded: list[tuple[str, int]] = []
        page.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
        page.on("response", lambda response: responded.append((response.url, response.status)))
        page.fill("input[name=to]", "ADA@")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#counts:has-text('matching')")
        assert page.inner_text("#counts") == "1–1 of 1 matching"
        page.click("#sink tbody a:has-text('Your receipt')")
        page.frame_locator("#html").locator("text=Hello Ada").wait_for()
        assert page.frame_locator("#html").locator("a:has-text('Track your order')").get_attribute("href") == LONG_URL
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # long URLs wrap
        assert page.locator("#events").get_attribute("href").startswith("/messages/?recipients=ada%40example.org")
        page.wait_for_load_state("load")  # the page's load waits for its frame's, which waits for its images
        # the browser saw the pixel and its CSP refused it: no request reached the server
        assert [failure for url, failure in failed if "/q/" in url] == ["csp"]
        assert not [url for url, _status in responded if "/q/" in url] and _recorded(stream) == 0
        screenshot(page, "sink-message")

        with page.expect_download() as download:
            page.click("#raw")
        assert download.value.suggested_filename.endswith(".eml")
        assert b"Your receipt" in Path(download.value.path()).read_bytes()

        with page.expect_response(lambda response: "/q/" in response.url) as pixel_response:
            page.click("#load-images")  # the person asks: now the pixel loads, and records an open
        assert pixel_response.value.status == 200
        assert _recorded(stream) == 1
    finally:
        events_redis().delete(stream)


class _Counter(BaseHTTPRequestHandler):
    """Counts every request it gets (the server's ``hits``): a tracking host stand-in."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>fetched</p>")

    do_POST = do_GET

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def tracking_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@needs_chromium
def test_the_preview_fetches_nothing_however_a_message_asks(
    live_server, staff_user, settings, tmp_path, tracking_host, browser_page
):
    url = f"http://127.0.0.1:{tracking_host.server_address[1]}"
    refreshes = "".join(variant.format(url=f"{url}/refresh{n}") for n, variant in enumerate(REFRESH_VARIANTS))
    others = (
        f'<link rel="prefetch" href="{url}/prefetch"><link rel="stylesheet" href="{url}/css">'
        f'<style>@import "{url}/import"; p{{background:url({url}/bg)}}</style><script src="{url}/script"></script>'
        f'<iframe src="{url}/iframe"></iframe><object data="{url}/object"></object><embed src="{url}/embed">'
        f'<video poster="{url}/poster" src="{url}/video" autoplay></video><audio src="{url}/audio" autoplay></audio>'
        f'<img srcset="{url}/srcset 1x"><svg><image href="{url}/svg"/></svg>'
        f'<form action="{url}/form" method="post"><input name="a" autofocus></form>'
    )
    html = f"<!doctype html><html><head>{refreshes}</head><body><p>Hi there</p>{others}</body></html>"
    settings.ENGAGE_SINK_DIR = tmp_path
    _rcpt, data = sink_message(1, html=html)
    with Mailbox(tmp_path) as mailbox:
        name = mailbox.deliver(mail_from="bounces@example.com", rcpt_tos=["ada@example.org"], data=data)
    page = browser_page(f"{live_server.url}/report/sink/{name}")
    page.frame_locator("#html").locator("text=Hi there").wait_for()
    page.wait_for_load_state("load")
    page.wait_for_timeout(2000)  # a refresh of 0 s has had its chance
    assert tracking_host.hits == []
    assert page.frame_locator("#html").locator("text=Hi there").is_visible()  # the frame never navigated


def _recorded(stream: str) -> int:
    """Events in ``stream`` once the live server's hit log (this process's) has shipped."""
    from tracking.events import events_redis
    from tracking.hitlog import hits_flush

    hits_flush()
    return events_redis().xlen(stream)
