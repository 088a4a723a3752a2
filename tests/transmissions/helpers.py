"""Shared helpers of the transmissions tests: the default transmission body, running one
through generation and hand-off in this process, and reading what the relay received and
what the send path wrote to the event outbox."""

from __future__ import annotations

import json

from transmissions.models import Transmission

URL = "/api/v1/transmissions"
HTML = '<html><body><p>Hi {{name}}</p><a href="https://example.com/offer?u={{name}}" data-msys-linkname="offer">go</a></body></html>'
TEXT = "Hi {{name}}, see https://example.com/text"
CONTENT = {
    "from": {"email": "news@sender.test", "name": "News"},
    "subject": "Hello {{name}}",
    "html": HTML,
    "text": TEXT,
}


def run(api, data) -> Transmission:
    """POST, then generate and send every chunk in this process."""
    from transmissions.sending import chunk_send
    from transmissions.services import transmission_start_generation

    response = api.post(URL, data, format="json")
    assert response.status_code == 200, response.content
    tid = int(response.json()["results"]["id"])
    for chunk in transmission_start_generation(transmission_id=tid):
        chunk_send(transmission_id=tid, chunk=chunk, token="test")
    return Transmission.objects.get(pk=tid)


def body(**overrides):
    data = {
        "campaign_id": "camp",
        "metadata": {"tx": "1", "shared": "tx"},
        "substitution_data": {"name": "World"},
        "content": CONTENT,
        "recipients": [
            {"address": {"email": "Jo@Example.com", "name": "Jo"}, "tags": ["t1"], "metadata": {"shared": "rcpt"}},
        ],
    }
    data.update(overrides)
    return data


def parts(message):
    html = text = None
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
        elif part.get_content_type() == "text/plain":
            text = part.get_content()
    return html, text


def no_defects(message) -> None:
    for part in message.walk():
        assert not part.defects, part.defects
    for name in message:
        assert not message[name].defects, (name, message[name].defects)


def lines_fit(data: bytes) -> None:
    assert max(len(line) for line in data.replace(b"\r\n", b"\n").split(b"\n")) <= 998


def addresses(message, name: str) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in message[name].addresses]


def outbox_events(cursor) -> list[dict]:
    """The events in the event outbox (where the send path writes them), oldest first."""
    cursor.execute("SELECT payload FROM tracking_event_outbox ORDER BY id")
    return [
        event
        for (payload,) in cursor.fetchall()
        for event in (json.loads(payload) if isinstance(payload, str) else payload)
    ]
