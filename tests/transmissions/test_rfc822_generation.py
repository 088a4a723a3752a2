"""email_rfc822 content through the API and the generation path: real PostgreSQL, Redis and
the in-process relay. The splitting itself is tested without a database in test_rfc822.py."""

from __future__ import annotations

import base64
import re
import time

from django.conf import settings

from tests.helpers import assert_error
from tests.transmissions.helpers import CONTENT, body, parts, run
from tracking.signing import tracking_signer

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
PDF_B64 = base64.encodebytes(PDF).decode("ascii").replace("\n", "\r\n")
HTML_QP = (
    "<html><body><p>Hi {{name}}</p>=\r\n"
    '<a href=3D"https://example.com/offer?u=3D{{name}}&amp;src=3Dmail" data-msys-linkname=3D"offer">go</a>=\r\n'
    ' <a href=3D"http://example.com/plain">plain</a></body></html>\r\n'
)
RFC = (
    "From: =?utf-8?q?N=C3=A9ws?= <news@sender.test>\r\n"
    "Subject: Report for {{name}}\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="MIX"\r\n'
    "\r\n"
    "--MIX\r\n"
    'Content-Type: multipart/alternative; boundary="ALT"\r\n'
    "\r\n"
    "--ALT\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hi {{name}}, see https://example.com/text\r\n"
    "--ALT\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    f"{HTML_QP}"
    "--ALT--\r\n"
    "--MIX\r\n"
    'Content-Type: application/pdf; name="report.pdf"\r\n'
    'Content-Disposition: attachment; filename="report.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    f"{PDF_B64}"
    "--MIX--\r\n"
)


def decode(token: str):
    return tracking_signer().decode(token, now=int(time.time()), max_age=settings.ENGAGE_TRACKING_LINK_EXPIRY)


def test_an_rfc822_message_is_tracked_like_inline_content_and_its_attachment_is_untouched(api, relay, events):
    options = {"open_tracking": True, "click_tracking": True}
    run(api, body(content={"email_rfc822": RFC}, options=options))
    received = relay.received[0]
    message = received.message
    assert message["To"] is None
    assert message["Subject"] == "Report for World"
    assert received.mail_from == "news@sender.test"
    html, text = parts(message)
    assert html.startswith("<html><body><img src=")
    opens = re.findall(r'<img src="http://[^"]+/q/([A-Za-z0-9_-]+)" width="1" height="1" border="0" alt="">', html)
    assert [decode(token).kind for token in opens] == ["initial_open", "open"]
    clicks = re.findall(r'href="http://[^"]+/f/([A-Za-z0-9_-]+)"', html)
    decoded = [decode(token) for token in clicks]
    assert [(d.target_url, d.link_name) for d in decoded] == [
        ("https://example.com/offer?u=World&src=mail", "offer"),
        ("http://example.com/plain", "Raw URL"),
    ]
    assert "data-msys" not in html and "<p>Hi World</p>" in html
    text_token = re.search(r"http://\S+/f/([A-Za-z0-9_-]+)", text).group(1)
    assert decode(text_token).target_url == "https://example.com/text"
    assert text.startswith("Hi World, see http://")
    attachment = next(part for part in message.walk() if part.get_content_type() == "application/pdf")
    assert attachment.get_content() == PDF
    assert PDF_B64.encode() in received.data  # the encoded lines as the client wrote them
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    injection = next(e for e in events() if e["type"] == "injection")
    assert (injection["subject"], injection["friendly_from"]) == ("Report for World", "news@sender.test")


def test_an_rfc822_message_without_tracking_keeps_its_links(api, relay):
    run(api, body(content={"email_rfc822": RFC}, options={"open_tracking": False, "click_tracking": False}))
    html, text = parts(relay.received[0].message)
    assert "/q/" not in html and "/f/" not in html and "/f/" not in text
    # As for inline content, an untracked href keeps its text as written (character references too).
    assert 'href="https://example.com/offer?u=World&amp;src=mail"' in html


def test_rfc822_tracking_follows_the_template_options(api, relay):
    response = api.post(
        "/api/v1/templates",
        {"id": "raw", "published": True, "content": {"email_rfc822": RFC}, "options": {"open_tracking": False}},
        format="json",
    )
    assert response.status_code == 200, response.content
    run(api, body(content={"template_id": "raw"}))
    html, _text = parts(relay.received[0].message)
    assert "/q/" not in html and "/f/" in html  # open off by the template, click by the default


def test_a_syntax_error_in_an_rfc822_part_is_422_3000_with_part_and_line(api):
    source = "From: a@sender.test\nSubject: s\nContent-Type: text/html\n\n<p>ok</p>\n<p>{{ if }}</p>\n"
    error = assert_error(
        api.post("/api/v1/transmissions", body(content={"email_rfc822": source}), format="json"), 422, "3000"
    )
    assert (error["part"], error["line"]) == ("html", 2)
    source = "From: a@sender.test\nSubject: {{ name \n\nbody\n"
    error = assert_error(
        api.post("/api/v1/transmissions", body(content={"email_rfc822": source}), format="json"), 422, "3000"
    )
    assert error["part"] == "Header:Subject"


def test_an_rfc822_source_that_is_not_a_mime_tree_is_422_1300(api):
    source = "Subject: s\nContent-Type: multipart/mixed; boundary=B\n\nno parts\n"
    assert_error(api.post("/api/v1/transmissions", body(content={"email_rfc822": source}), format="json"), 422, "1300")


#: A part's Content-Type with 64 Ki semicolons in a quoted string: the library's parameter
#: reading is quadratic in them (seconds here; a megabyte of them ran for hours).
SEMICOLONS = 'text/plain; name="' + "\r\n ".join(";" * 4096 for _ in range(16)) + '"'


def test_a_content_type_with_thousands_of_parameters_is_422_1300_at_once(api):
    """An attacker's finding: it held the web request (and a worker) while the parameters
    were read; now it is refused by its count, on the root and on a part."""
    root = f"From: a@sender.test\nSubject: s\nContent-Type: {SEMICOLONS}\n\nbody\n"
    part = (
        "From: a@sender.test\nSubject: s\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        f"Content-Type: text/plain\n\nfirst\n--B\nContent-Disposition: attachment; {SEMICOLONS[12:]}\n\nx\n--B--\n"
    )
    for source in (root, part):
        error = assert_error(
            api.post("/api/v1/transmissions", body(content={"email_rfc822": source}), format="json"), 422, "1300"
        )
        assert "over 128 parameters" in error["description"], error


def test_without_perform_substitutions_bodies_go_as_written_and_headers_are_substituted(api, relay):
    options = {"perform_substitutions": False}
    source = "From: a@sender.test\nSubject: Hi {{name}}\nContent-Type: text/html\n\n<p>{{ if }}{{name}}</p>\n"
    run(api, body(content={"email_rfc822": source}, options=options))
    run(api, body(options=options))
    raw, inline = (received.message for received in relay.received)
    assert raw["Subject"] == "Hi World" and inline["Subject"] == "Hello World"
    assert "<p>{{ if }}{{name}}</p>" in raw.get_content() and "/q/" in raw.get_content()
    html, text = parts(inline)
    assert "<p>Hi {{name}}</p>" in html and re.search(r'href="http://[^"]+/f/[A-Za-z0-9_-]+"', html)
    assert text.startswith("Hi {{name}}, see http://") and CONTENT["text"] != text


def test_without_perform_substitutions_inline_bodies_that_are_not_valid_templates_are_accepted(api, relay):
    content = {**CONTENT, "html": "<p>{{ if }} {{name}</p>", "text": "{{ each }}"}
    run(api, body(content=content, options={"perform_substitutions": False}))
    html, text = parts(relay.received[0].message)
    assert "<p>{{ if }} {{name}</p>" in html and text.startswith("{{ each }}")
    substituted = api.post("/api/v1/transmissions", body(content=content), format="json")
    assert_error(substituted, 422, "3000")
