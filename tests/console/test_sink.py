from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from django.test import override_settings


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-for-tests", is_staff=True)


def _sink_message(directory: Path) -> str:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "Spring sale", "shop@example.com", "ann@example.org"
    msg.set_content("Plain text body")
    msg.add_alternative('<p>Hello <a href="http://localhost:8000/f/abc">Buy</a></p>', subtype="html")
    name = "1700000000000-1-0.eml"
    (directory / name).write_bytes(b"X-Engage-Sink-Rcpt-To: ann@example.org\r\n" + msg.as_bytes())
    return name


def test_sink_lists_messages_and_shows_one_sandboxed(client, staff, tmp_path):
    name = _sink_message(tmp_path)
    client.force_login(staff)
    with override_settings(ENGAGE_SINK_DIR=tmp_path):
        listing = client.get("/report/sink/").content.decode()
        assert "Spring sale" in listing and f"/report/sink/{name}" in listing
        page = client.get(f"/report/sink/{name}").content.decode()
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
        assert "http://localhost:8000/f/abc" in page and "Plain text body" in page
        assert client.get("/report/sink/..%2Fsecrets.eml").status_code == 404
        assert client.get("/report/sink/missing.eml").status_code == 404
