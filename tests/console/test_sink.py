"""The development sink's pages (issue 15, Deliver 6): paging, search, the message page, its
HTML preview under a CSP that loads no tracking pixel, the raw download, hostile input."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from console import sink_mailbox
from console.views.sink import PAGE_SIZE
from tests.console.helpers import LONG_URL, REFRESH_VARIANTS, sink_fill, sink_message
from tests.helpers import fails_if_hung
from transmissions.models import Message, Transmission


@pytest.fixture
def sink(settings, tmp_path) -> Path:
    settings.ENGAGE_SINK_DIR = tmp_path
    return tmp_path


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("boss", is_staff=True)  # no password: nothing to hash
    client.force_login(user)
    return user


def _names_shown(html: str) -> list[str]:
    return re.findall(r'<a href="/report/sink/([^"/?]+\.eml)">', html)


def _counts(html: str) -> str:
    return re.search(r'<p id="counts">(.*?)</p>', html, re.S).group(1)


def test_every_sink_page_needs_a_staff_login(client, db, sink):
    (name,) = sink_fill(sink, 1)
    for path in ("/report/sink/", f"/report/sink/{name}", f"/report/sink/{name}/html", f"/report/sink/{name}/raw"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path


def test_the_list_pages_newest_first_with_counts(client, staff, sink):
    names = sink_fill(sink, 120)
    first = client.get("/report/sink/").content.decode()
    assert _counts(first) == "1–50 of 120"
    assert _names_shown(first) == names[::-1][:PAGE_SIZE]
    assert "Page 1 of 3" in first and 'href="?page=2" rel="next"' in first
    last = client.get("/report/sink/", {"page": "3"}).content.decode()
    assert _counts(last) == "101–120 of 120" and _names_shown(last) == names[::-1][100:]


def test_a_page_past_the_end_shows_the_last_one_and_one_not_a_number_the_first(client, staff, sink):
    sink_fill(sink, 120)
    for page in ("999999999999999999999999", "3", "4", "0", "-7"):
        response = client.get("/report/sink/", {"page": page})
        assert response.status_code == 200 and _counts(response.content.decode()) == "101–120 of 120", page
    for page in ("abc", "1.5", "", "%", "1e3", "9" * 5000):
        response = client.get("/report/sink/", {"page": page})
        assert response.status_code == 200 and _counts(response.content.decode()) == "1–50 of 120", page


def test_search_by_recipient_and_subject_is_a_case_insensitive_substring(client, staff, sink):
    names = sink_fill(sink, 120)
    by_rcpt = client.get("/report/sink/", {"to": "USER11"}).content.decode()  # user11, user110..119
    assert _counts(by_rcpt) == "1–11 of 11 matching"
    assert _names_shown(by_rcpt) == [names[i] for i in (119, 118, 117, 116, 115, 114, 113, 112, 111, 110, 11)]
    by_subject = client.get("/report/sink/", {"subject": "password RESET"}).content.decode()
    assert _counts(by_subject) == "1–12 of 12 matching"
    both = client.get("/report/sink/", {"to": "user10", "subject": "reset"}).content.decode()
    assert _names_shown(both) == [names[100], names[10]]
    paged = client.get("/report/sink/", {"to": "example.org", "page": "2"}).content.decode()
    assert _counts(paged) == "51–100 of 120 matching" and 'href="?to=example.org&amp;page=3"' in paged
    none = client.get("/report/sink/", {"to": "nobody"}).content.decode()
    assert _counts(none) == "No message matches." and _names_shown(none) == []


@pytest.mark.parametrize("text", ["%", "_", "'", '"', "\\", "%_'\"; DROP TABLE message; --", "ü" * 300, "<b>x</b>"])
def test_search_text_is_text_never_sql_or_html(client, staff, sink, text):
    sink_fill(sink, 3)
    response = client.get("/report/sink/", {"to": text, "subject": text})
    assert response.status_code == 200
    assert _counts(response.content.decode()) == "No message matches."
    assert "<b>x</b>" not in response.content.decode()


def test_the_list_of_1000_messages_answers_in_under_a_second_reading_no_message_file(client, staff, sink, monkeypatch):
    """Issue 15: "the sink page with 1,000 messages loads in under a second". The server's
    time for the list, a search and a late page, each timed warm (the index the sink wrote as
    it received them); best of three, so a neighbour's burst on a shared machine is not
    taken for the page's time (tests/README.md: the one test that asserts a time). No message
    file is read: the index answers."""
    sink_fill(sink, 1000)
    client.get("/report/sink/")  # warm: templates compiled, the index's pages in the OS cache
    reads = []
    real_read_head = sink_mailbox.read_head
    monkeypatch.setattr(sink_mailbox, "read_head", lambda path: reads.append(path) or real_read_head(path))
    for params, counts in (({}, "1–50 of 1,000"), ({"to": "user5"}, "1–50 of 111 matching"),
                           ({"page": "20"}, "951–1,000 of 1,000")):  # fmt: skip
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            response = client.get("/report/sink/", params)
            timings.append(time.perf_counter() - started)
        assert _counts(response.content.decode()) == counts
        assert min(timings) < 1.0, (params, timings)
    assert reads == []


def test_files_put_in_or_taken_out_behind_the_index_are_seen(client, staff, sink):
    names = sink_fill(sink, 5)
    _rcpt, data = sink_message(77)
    (sink / "copied-in.eml").write_bytes(data)
    (sink / names[0]).unlink()
    (sink / "notes.txt").write_text("not a message")
    shown = _names_shown(client.get("/report/sink/").content.decode())
    assert sorted(shown) == sorted([*names[1:], "copied-in.eml"])
    (sink / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (sink / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    rebuilt = client.get("/report/sink/", {"subject": "order 77"}).content.decode()
    assert _names_shown(rebuilt) == ["copied-in.eml"]


def test_an_index_that_cannot_be_opened_is_kept_in_memory_for_the_request(client, staff, sink):
    (sink / "index.sqlite3").mkdir()  # a folder where the index file should be: SQLite cannot open it
    sink_fill(sink, 3)
    assert _counts(client.get("/report/sink/", {"subject": "order"}).content.decode()) == "1–2 of 2 matching"
    assert (sink / "index.sqlite3").is_dir()


def test_an_index_of_another_schema_version_is_rebuilt(client, staff, sink, monkeypatch):
    sink_fill(sink, 3)
    monkeypatch.setattr(sink_mailbox, "SCHEMA_VERSION", sink_mailbox.SCHEMA_VERSION + 1)
    assert _counts(client.get("/report/sink/").content.decode()) == "1–3 of 3"


def test_a_missing_sink_folder_is_an_empty_list(client, staff, settings, tmp_path):
    settings.ENGAGE_SINK_DIR = tmp_path / "never-made"
    assert _counts(client.get("/report/sink/").content.decode()) == "The sink is empty."
    assert not (tmp_path / "never-made").exists()


def test_the_message_page_shows_it_within_the_window_with_its_links(client, staff, sink):
    transmission = Transmission.objects.create()
    Message.objects.create(transmission=transmission, chunk=0, message_id="00000000000000000007",
                           email="user7@example.org", recipient={})  # fmt: skip
    names = sink_fill(sink, 8)
    page = client.get(f"/report/sink/{names[7]}").content.decode()
    assert "<th>Subject</th><td>Order 7 shipped</td>" in page and LONG_URL in page  # the text part
    assert "#headers td,#text,.meta{overflow-wrap:anywhere" in page and "#headers{table-layout:fixed}" in page
    assert "height:calc(100vh - 7rem)" in page  # the HTML's frame: the window's height, the page's width
    assert f'href="/report/sink/{names[7]}/raw" download' in page
    assert f'href="/messages/?recipients=user7%40example.org&amp;transmissions={transmission.id}"' in page
    frame = re.search(r"<iframe [^>]*>", page).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert f'src="/report/sink/{names[7]}/html"' in frame and "Load images" in page
    with_images = client.get(f"/report/sink/{names[7]}", {"images": "1"}).content.decode()
    assert f'src="/report/sink/{names[7]}/html?images=1"' in with_images
    unknown = client.get(f"/report/sink/{names[3]}").content.decode()  # no stored message has its id
    assert 'href="/messages/?recipients=user3%40example.org"' in unknown


def test_the_html_preview_loads_no_remote_image_unless_asked(client, staff, sink):
    pixel = "http://127.0.0.1:8001/q/AAAA"
    _rcpt, data = sink_message(1, html=f'<!doctype html><html><head><meta http-equiv="Refresh" content="0;url={pixel}">'
                                        f'</head><body><a href="{LONG_URL}">x</a><img src="{pixel}"></body></html>')  # fmt: skip
    with sink_mailbox.Mailbox(sink) as mailbox:
        name = mailbox.deliver(mail_from="a@example.com", rcpt_tos=["b@example.org"], data=data)
    response = client.get(f"/report/sink/{name}/html")
    assert response.status_code == 200 and response["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["img-src"] == "data:"  # the pixel's host is not allowed
    assert policy["style-src"] == "'unsafe-inline'" and policy["form-action"] == "'none'"
    assert policy["sandbox"] == "allow-popups allow-popups-to-escape-sandbox"
    assert response["X-Frame-Options"] == "SAMEORIGIN" and response["Referrer-Policy"] == "no-referrer"
    html = response.content.decode()
    assert html.startswith('<!doctype html><html><head><base target="_blank"><x-meta http-equiv="Refresh"')  # inert
    assert f'<img src="{pixel}">' in html
    asked = client.get(f"/report/sink/{name}/html", {"images": "1"})
    assert "img-src * data:" in asked["Content-Security-Policy"]
    assert "default-src 'none'" in asked["Content-Security-Policy"]


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("variant", REFRESH_VARIANTS)
def test_no_meta_element_reaches_the_preview_however_it_is_written(client, staff, sink, variant):
    url = "http://127.0.0.1:8001/f/AAAA"
    html = f"<!doctype html><html><head>{variant.format(url=url)}</head><body><p>Hi</p></body></html>"
    _rcpt, data = sink_message(1, html=html)
    with sink_mailbox.Mailbox(sink) as mailbox:
        name = mailbox.deliver(mail_from="a@example.com", rcpt_tos=["b@example.org"], data=data)
    response = client.get(f"/report/sink/{name}/html")
    parser = _StartTags()
    parser.feed(response.content.decode())
    assert [tag for tag, _attrs in parser.tags if tag == "meta"] == []
    assert re.search(r"<meta[\s/>]", response.content.decode(), re.I) is None
    # and were one to get through, the document is sandboxed with no scripts and no top navigation
    sandbox = re.search(r"sandbox ([^;]*)", response["Content-Security-Policy"]).group(1).split()
    assert not {"allow-scripts", "allow-top-navigation", "allow-same-origin", "allow-forms"} & set(sandbox)


def test_the_raw_source_downloads_as_message_rfc822(client, staff, sink):
    (name,) = sink_fill(sink, 1)
    response = client.get(f"/report/sink/{name}/raw")
    assert response.status_code == 200 and response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert b"".join(response.streaming_content) == (sink / name).read_bytes()


NOT_MESSAGES = ["..%2F..%2Fetc%2Fpasswd", "..%2Fsecrets.eml", ".hidden.eml", "%2Fetc%2Fpasswd.eml", "missing.eml",
                "a" * 300 + ".eml", "index.sqlite3", "x.eml.tmp", "caf%C3%A9.eml", "..eml", "x%20y.eml",
                "%E2%80%AE.eml", "%00.eml", "x.eml%00", "."]  # fmt: skip


def test_a_name_that_is_not_a_message_is_404_on_every_page(client, staff, sink):
    sink_fill(sink, 1)
    (sink / ".hidden.eml").write_bytes(b"Subject: hidden\r\n\r\n")
    (sink / "x.eml.tmp").write_bytes(b"Subject: half written\r\n\r\n")
    for name in NOT_MESSAGES:
        for suffix in ("", "/html", "/raw"):
            response = client.get(f"/report/sink/{name}{suffix}")
            assert response.status_code in (400, 404), (name, suffix, response.status_code)


def test_a_symbolic_link_is_not_served(client, staff, sink, tmp_path_factory):
    secret = tmp_path_factory.mktemp("outside") / "secret.eml"
    secret.write_bytes(b"Subject: secret\r\n\r\nnot yours")
    (sink / "link.eml").symlink_to(secret)
    assert client.get("/report/sink/link.eml/raw").status_code == 404
    assert _counts(client.get("/report/sink/").content.decode()) == "The sink is empty."


UNPARSABLE = {
    "binary": bytes(range(256)) * 40,
    "no-headers": b"\r\n\r\njust a body",
    "bad-charset": b"Subject: =?x-unknown?Q?caf=E9?=\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n<p>hi</p>",
    "bad-base64": b"Subject: b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64",
    "latin1-headers": "Subject: café\r\nTo: zoë@exämple.org\r\n\r\nbody".encode("latin-1"),
    "bad-address": b'To: <<<@>>>, "unterminated\r\nFrom: ,,,@\r\nSubject: =?utf-8?B?////?=\r\n\r\nx',
    "bad-multipart": b'Content-Type: multipart/alternative; boundary="\r\n\r\n--\r\n--',
    "huge-header": b"Subject: " + b"x" * 400_000 + b"\r\n\r\nbody",
    "empty": b"",
}


@pytest.mark.parametrize("kind", sorted(UNPARSABLE))
def test_an_unparsable_message_is_listed_and_shown_never_a_500(client, staff, sink, kind):
    (sink / f"{kind}.eml").write_bytes(UNPARSABLE[kind])
    listing = client.get("/report/sink/")
    assert listing.status_code == 200 and _names_shown(listing.content.decode()) == [f"{kind}.eml"]
    assert client.get(f"/report/sink/{kind}.eml").status_code == 200
    assert client.get(f"/report/sink/{kind}.eml/html").status_code in (200, 404)
    assert client.get(f"/report/sink/{kind}.eml/raw").status_code == 200


def test_a_broken_html_part_is_named_on_the_page(client, staff, sink):
    (sink / "broken.eml").write_bytes(UNPARSABLE["bad-charset"])
    page = client.get("/report/sink/broken.eml").content.decode()
    assert 'id="problem"' in page and "the html part cannot be read (LookupError" in page


def _many_parts(count: int) -> bytes:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(count))
    html = "--b\r\nContent-Type: text/html\r\n\r\n<p>the html</p>\r\n"
    return (
        "From: a@example.com\r\nTo: b@example.org\r\nSubject: many parts\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="b"\r\n\r\n{html}{parts}--b--\r\n'
    ).encode()


def test_a_message_of_20000_parts_is_read_up_to_the_cap_and_the_page_says_so(client, staff, sink):
    # found by an attacker: the page parsed every part (~8 s for 20,000)
    (sink / "many.eml").write_bytes(_many_parts(20_000))
    with fails_if_hung(60):
        reading = sink_mailbox.message_read(sink / "many.eml")
        page = client.get("/report/sink/many.eml").content.decode()
    assert reading.parts_read == sink_mailbox.MAX_PARTS and reading.parts_cut
    assert reading.html == "<p>the html</p>" and reading.text == "part 0"
    assert f"only its first {sink_mailbox.MAX_PARTS} MIME parts are read" in page and 'id="parts-cut"' in page
    assert client.get("/report/sink/many.eml/html").content.decode().endswith("<p>the html</p>")
    assert len((sink / "many.eml").read_bytes()) == len(client.get("/report/sink/many.eml/raw").getvalue())


def test_a_message_within_the_cap_is_read_whole_and_says_nothing(client, staff, sink):
    (sink / "some.eml").write_bytes(_many_parts(sink_mailbox.MAX_PARTS - 2))
    reading = sink_mailbox.message_read(sink / "some.eml")
    assert reading.parts_read == sink_mailbox.MAX_PARTS - 1 and not reading.parts_cut
    assert 'id="parts-cut"' not in client.get("/report/sink/some.eml").content.decode()
