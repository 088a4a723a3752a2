"""Real SMTP clients against a real listener on loopback with a throwaway certificate (issue
13, Tests; SMTP-INJECTION.md §5.11 items 3 and 4): Django's SMTP backend and Nodemailer. Each
message is relayed without ``X-MSYS-API`` with its links tracked, and a click on the relayed
copy becomes an event carrying the header's campaign, metadata and tags, read back from the
events API as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smtp_injection.helpers import send_all
from transmissions.models import Message, Transmission

ROOT = Path(__file__).resolve().parents[2]
SEARCH = "/api/v1/events/message"
HTML = '<html><body><p>Hello</p><a href="https://shop.example.com/offer?id=7">Offer</a></body></html>'
NODE_DIR = ROOT / "var" / "test-node"  # npm's copy of nodemailer, kept between runs (var/ is ignored)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the throwaway self-signed certificate
    return context


def _click_and_read_events(client, api, relayed, transmission: int) -> list[dict]:
    """Follow the tracked link of every relayed copy through the tracking view, land the
    events as production lands them, and return the transmission's click events from the
    events API."""
    from analytics.landing import land_once

    for received in relayed:
        html = next(p for p in received.message.walk() if p.get_content_type() == "text/html").get_content()
        links = re.findall(r'href="https?://[^"/]+(/f/[A-Za-z0-9_-]+)"', html)
        assert links, html
        response = client.get(links[0])
        assert response.status_code == 302 and response["Location"] == "https://shop.example.com/offer?id=7"
    assert land_once(consumer="test", block_ms=None)
    found = api.get(SEARCH, {"transmissions": str(transmission), "events": "click"})
    assert found.status_code == 200, found.content
    return found.json()["results"]


def _assert_relayed_and_tracked(relay, expected_rcpts: set[str]) -> None:
    assert {received.rcpt_tos[0] for received in relay.received} == expected_rcpts
    for received in relay.received:
        assert b"x-msys-api" not in received.data.lower()
        assert b"https://shop.example.com/offer" not in received.data  # tracked: only the tracking URL


def test_django_email_multi_alternatives_with_cc_bcc_and_a_2_kb_header(smtp, smtp_key, relay, events, api, client):
    from django.core.mail import EmailMultiAlternatives, get_connection

    # The bulk is in substitution_data (ignored for SMTP, SPEC A.4): metadata over
    # ENGAGE_MAX_METADATA_LEN (1000) bytes would be left out of the links (SPEC A.2).
    header = {"campaign_id": "django-app", "metadata": {"order": "A-17"}, "tags": ["django", "orders"],
              "options": {"click_tracking": True}, "substitution_data": {"note": "x" * 1900}}  # fmt: skip
    value = json.dumps(header, separators=(",", ":"))
    assert len(value) > 1950
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=smtp.port,
                                username="SMTP_Injection", password=smtp_key, use_tls=True, timeout=30)  # fmt: skip
    connection.ssl_context = _unverified()  # a cached_property: the instance attribute wins
    email = EmailMultiAlternatives(
        subject="Your order", body="Offer: https://shop.example.com/offer?id=7", from_email="App <app@sender.example.com>",
        to=["jo@example.com"], cc=["cc@example.com"], bcc=["bcc@example.com"], headers={"X-MSYS-API": value},
        connection=connection,
    )  # fmt: skip
    email.attach_alternative(HTML, "text/html")
    assert email.send() == 1
    raw = email.message().as_bytes()
    # Django 5.2 puts the whole value on one 1,900+ byte continuation line after "X-MSYS-API:".
    assert max(len(line) for line in raw.splitlines()) > 1900
    (transmission,) = Transmission.objects.all()
    assert transmission.campaign_id == "django-app" and transmission.metadata == {"order": "A-17"}
    assert Message.objects.filter(transmission=transmission).count() == 3
    send_all(transmission.pk)
    _assert_relayed_and_tracked(relay, {"jo@example.com", "cc@example.com", "bcc@example.com"})
    assert all(received.message["Cc"] == "cc@example.com" for received in relay.received)
    assert all(received.message["Bcc"] is None for received in relay.received)
    clicks = _click_and_read_events(client, api, relay.received, transmission.pk)
    assert sorted(event["rcpt_to"] for event in clicks) == ["bcc@example.com", "cc@example.com", "jo@example.com"]
    for event in clicks:
        assert event["campaign_id"] == "django-app"
        assert event["rcpt_meta"] == {"order": "A-17"} and event["rcpt_tags"] == ["django", "orders"]
        assert event["target_link_url"] == "https://shop.example.com/offer?id=7"


NODE_SCRIPT = r"""
const nodemailer = require(process.env.NODEMAILER);
const mail = JSON.parse(process.env.MAIL);
(async () => {
  const raw = await nodemailer.createTransport({streamTransport: true, buffer: true}).sendMail(mail);
  const transport = nodemailer.createTransport({
    host: "127.0.0.1", port: Number(process.env.PORT), secure: false, requireTLS: true,
    auth: {user: "SMTP_Injection", pass: process.env.KEY}, tls: {rejectUnauthorized: false},
  });
  const info = await transport.sendMail(mail);
  process.stdout.write(JSON.stringify({raw: raw.message.toString(), response: info.response}));
})().catch((error) => { console.error(error); process.exit(1); });
"""


@pytest.fixture(scope="session")
def nodemailer() -> Path:
    """nodemailer 6.10.1 from npm (pinned), installed once under var/test-node (a few seconds)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (the Nodemailer client test needs them)")
    module = NODE_DIR / "node_modules" / "nodemailer"
    if not module.exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), "nodemailer@6.10.1"],
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"npm install nodemailer@6 failed:\n{done.stdout}\n{done.stderr}"
    return module


def test_nodemailer_with_its_rfc_2047_encoded_header(smtp, smtp_key, relay, events, api, client, nodemailer):
    header = {"campaign_id": "été-promo", "metadata": {"name": "Zoë Ångström", "order": "N-9"},
              "tags": ["node", "ünïcode"], "options": {"click_tracking": True}}  # fmt: skip
    mail = {
        "from": "App <app@sender.example.com>", "to": "jo@example.com", "cc": "cc@example.com",
        "bcc": "bcc@example.com", "subject": "Your order", "html": HTML,
        "headers": {"X-MSYS-API": json.dumps(header, ensure_ascii=False)},
    }  # fmt: skip
    env = {**os.environ, "NODEMAILER": str(nodemailer), "MAIL": json.dumps(mail), "PORT": str(smtp.port),
           "KEY": smtp_key}  # fmt: skip
    done = subprocess.run(["node", "-e", NODE_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["response"].startswith("250 2.0.0 OK "), result
    sent_header = re.search(r"^X-MSYS-API:.*?(?=^\S)", result["raw"], re.MULTILINE | re.DOTALL | re.IGNORECASE)
    assert sent_header is not None, result["raw"][:2000]
    assert "=?UTF-8?" in sent_header.group(0) and re.search(r"\n ", sent_header.group(0))  # RFC 2047 words, folded
    transmission = Transmission.objects.get(pk=int(result["response"].rsplit(" ", 1)[1]))
    assert transmission.campaign_id == "été-promo" and transmission.metadata["name"] == "Zoë Ångström"
    send_all(transmission.pk)
    _assert_relayed_and_tracked(relay, {"jo@example.com", "cc@example.com", "bcc@example.com"})
    clicks = _click_and_read_events(client, api, relay.received, transmission.pk)
    assert len(clicks) == 3
    for event in clicks:
        assert event["campaign_id"] == "été-promo"
        assert event["rcpt_meta"] == {"name": "Zoë Ångström", "order": "N-9"}
        assert event["rcpt_tags"] == ["node", "ünïcode"]


def test_the_readmes_smtplib_example_works_as_written(smtp, smtp_key, relay):
    # Found by a newcomer: the example once sent msg.as_bytes() (bare LF line ends), a 554.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    script = re.search(r"# with Python's smtplib.*?<<'PY'\n(.*?)\nPY\n", readme, re.S)
    assert script, "README's smtplib example"
    code = script[1].replace('smtplib.SMTP("127.0.0.1", 2525)', f'smtplib.SMTP("127.0.0.1", {smtp.port})')
    assert str(smtp.port) in code
    done = subprocess.run([sys.executable, "-", smtp_key], input=code, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"250 2\.0\.0 OK \d+\n", done.stdout), done.stdout
    transmission = Transmission.objects.get(id=int(done.stdout.split()[-1]))
    assert transmission.campaign_id == "smtp-demo"
