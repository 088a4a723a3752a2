"""Every message of a transmission sends the template version current when it started
generating, and its events say that version (issue 11, Deliver 6).

The template is read once, in ``transmission_start_generation``, into the transmission's
``template_snapshot``. A second worker process is simulated by clearing the per-process
prepared cache (``transmissions.generation._cache``) between two chunks.
"""

from __future__ import annotations

import re

import pytest

from templates_app.models import Template
from tests.transmissions.helpers import URL, parts
from transmissions import generation
from transmissions.models import Message, MessageState, Transmission, TransmissionState

TEMPLATE = "pinned"
LINK = '<a href="https://example.com/offer" data-msys-linkname="offer">go</a>'
V1 = {"from": {"email": "news@sender.test"}, "subject": "One {{name}}", "html": f"<p>one</p>{LINK}", "text": "one"}
V2 = {"from": {"email": "news@sender.test"}, "subject": "Two {{name}}", "html": f"<p>two</p>{LINK}", "text": "two"}
RECIPIENTS = [{"address": f"r{n}@example.com"} for n in range(4)]


@pytest.fixture(autouse=True)
def two_chunks(settings):
    settings.ENGAGE_GENERATION_CHUNK_SIZE = 2  # the four recipients make chunks 0 and 1
    generation._cache.clear()
    yield
    generation._cache.clear()


def _template(*, published: bool = True, content: dict = V1, options: dict | None = None) -> None:
    from templates_app.services import template_create

    template_create(
        template_id=TEMPLATE, name=TEMPLATE, published=published, content=content,
        options={"click_tracking": True} if options is None else options,
    )  # fmt: skip


def _publish(content: dict, options: dict | None = None) -> None:
    """A new published version (the published slot overwritten: the next version number)."""
    from templates_app.services import TemplateUpdateMode, template_update

    template_update(template_id=TEMPLATE, content=content, options=options, mode=TemplateUpdateMode.PUBLISHED)


def _accept(api, **content) -> int:
    data = {"substitution_data": {"name": "World"}, "content": {"template_id": TEMPLATE, **content},
            "recipients": RECIPIENTS}  # fmt: skip
    response = api.post(URL, data, format="json")
    assert response.status_code == 200, response.content
    return int(response.json()["results"]["id"])


def _start(tid: int) -> list[int]:
    from transmissions.services import transmission_start_generation

    chunks = transmission_start_generation(transmission_id=tid)
    assert chunks == [0, 1]
    return chunks


def _send(tid: int, chunk: int, *, other_process: bool = True) -> None:
    from transmissions.sending import chunk_send

    if other_process:
        generation._cache.clear()
    chunk_send(transmission_id=tid, chunk=chunk, token=f"worker-{chunk}")


def _subjects(relay) -> set[str]:
    return {received.message["Subject"] for received in relay.received}


def test_a_version_published_between_two_chunks_is_not_sent(api, client, relay, events):
    from templates_app.selectors import template_get_for_send

    _template()
    tid = _accept(api)
    _start(tid)
    _send(tid, 0)
    _publish(V2, {"click_tracking": False})
    assert template_get_for_send(template_id=TEMPLATE, use_draft=False)[2] == 2  # the template did change
    _send(tid, 1)

    transmission = Transmission.objects.get(pk=tid)
    assert transmission.state == TransmissionState.SUCCESS and transmission.num_generated == 4
    assert transmission.template_version == "1"
    assert len(relay.received) == 4
    assert _subjects(relay) == {"One World"}
    for received in relay.received:
        html, text = parts(received.message)
        assert "<p>one</p>" in html and text.strip() == "one"
        assert re.search(r'href="http://[^"]+/f/[A-Za-z0-9_-]+"', html)  # version 1's click_tracking
    sent = [e for e in events() if e["type"] in ("injection", "delivery")]
    assert len(sent) == 8
    assert {(e["template_id"], e["template_version"]) for e in sent} == {(TEMPLATE, "1")}

    # Engagement with a message of the second chunk: its tokens carry the pinned version.
    html, _text = parts(relay.received[-1].message)
    click = re.search(r'href="http://[^"/]+(/f/[A-Za-z0-9_-]+)"', html).group(1)
    pixel = re.search(r'<img src="http://[^"/]+(/q/[A-Za-z0-9_-]+)"', html).group(1)
    assert client.get(click).status_code == 302
    assert client.get(pixel).status_code == 200
    engagement = [e for e in events() if e["type"] in ("click", "initial_open", "open")]
    assert len(engagement) == 2 and "click" in {e["type"] for e in engagement}
    assert {e["template_version"] for e in engagement} == {"1"}


def test_a_version_published_after_acceptance_and_before_the_start_is_sent(api, relay, events):
    _template()
    tid = _accept(api)
    _publish(V2)  # SparkPost takes the template when generation starts
    _start(tid)
    _send(tid, 0)
    _send(tid, 1)
    assert _subjects(relay) == {"Two World"} and len(relay.received) == 4
    assert Transmission.objects.get(pk=tid).template_version == "2"
    assert {e["template_version"] for e in events()} == {"2"}


def test_a_draft_published_mid_send_still_sends_the_draft_as_it_was(api, relay, events):
    from templates_app.services import TemplateUpdateMode, template_update

    _template(published=False)
    tid = _accept(api, use_draft_template=True)
    _start(tid)
    _send(tid, 0)
    template_update(
        template_id=TEMPLATE, content=V2, mode=TemplateUpdateMode.PUBLISH
    )  # the template has no draft any more
    _send(tid, 1)
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUCCESS
    assert _subjects(relay) == {"One World"} and len(relay.received) == 4
    assert {e["template_version"] for e in events()} == {"1"}


def test_a_retry_after_a_new_version_sends_the_pinned_one(api, relay, events):
    from transmissions.sending import message_retry

    _template()
    relay.handler.answers = ["451 4.3.0 try later"]
    tid = _accept(api)
    _start(tid)
    _send(tid, 0)
    _send(tid, 1)
    delayed = Message.objects.get(transmission_id=tid, state=MessageState.DELAYED)
    _publish(V2)
    generation._cache.clear()
    assert message_retry(message_pk=delayed.pk, token="retry")[0] == "delivered"
    assert _subjects(relay) == {"One World"} and len(relay.received) == 4
    assert {e["template_version"] for e in events()} == {"1"}


def test_a_template_deleted_after_the_start_is_sent_from_the_snapshot(api, relay, events):
    _template()
    tid = _accept(api)
    _start(tid)
    _send(tid, 0)
    assert api.delete(f"/api/v1/templates/{TEMPLATE}").status_code == 409  # the API refuses while in use
    Template.objects.filter(pk=TEMPLATE).delete()  # the admin or the database does not
    _send(tid, 1)
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.state == TransmissionState.SUCCESS and transmission.num_generated == 4
    assert _subjects(relay) == {"One World"} and len(relay.received) == 4
    assert {e["type"] for e in events()} == {"injection", "delivery"}
    assert {e["template_version"] for e in events()} == {"1"}


def test_a_template_gone_at_the_start_fails_every_message_even_if_it_comes_back(api, relay, events):
    _template()
    tid = _accept(api)
    Template.objects.filter(pk=TEMPLATE).delete()
    _start(tid)
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.template_version == ""
    assert transmission.template_snapshot == {"error": {"type": "NotFound", "description": "Template does not exist"}}
    _send(tid, 0)
    _template(content=V2)  # the outcome was decided at the start: chunk 1 fails too
    _send(tid, 1)

    transmission.refresh_from_db()
    assert transmission.state == TransmissionState.FAILED
    assert (transmission.num_generated, transmission.num_failed_gen) == (0, 4)
    assert relay.received == []
    failures = events()
    assert [e["type"] for e in failures] == ["generation_failure"] * 4
    assert {e["reason"] for e in failures} == {"the content cannot be prepared: NotFound: Template does not exist"}
    assert {(e["template_id"], e["template_version"]) for e in failures} == {(TEMPLATE, "")}


def test_a_draft_gone_at_the_start_fails_with_no_draft_template(api, relay, events):
    from templates_app.services import TemplateUpdateMode, template_update

    _template(published=False)
    tid = _accept(api, use_draft_template=True)
    template_update(template_id=TEMPLATE, mode=TemplateUpdateMode.PUBLISH)
    _start(tid)
    _send(tid, 0)
    _send(tid, 1)
    assert Transmission.objects.get(pk=tid).state == TransmissionState.FAILED
    assert relay.received == []
    assert {e["reason"] for e in events()} == {
        f"the content cannot be prepared: NoDraftTemplate: Template '{TEMPLATE}' has no draft version"
    }


def test_a_transmission_started_before_snapshots_reads_the_template_as_it_is_now(api, relay, events):
    _template()
    tid = _accept(api)
    _start(tid)
    Transmission.objects.filter(pk=tid).update(template_snapshot=None)  # a row from before migration 0005
    _publish(V2)
    _send(tid, 0)
    _send(tid, 1)
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUCCESS
    assert _subjects(relay) == {"Two World"} and len(relay.received) == 4
    assert {e["template_version"] for e in events()} == {"1"}  # as before: the number recorded at the start


def test_a_redelivered_start_keeps_the_pin(api, relay, events):
    from transmissions.services import transmission_start_generation

    _template()
    tid = _accept(api)
    _start(tid)
    _publish(V2)
    assert transmission_start_generation(transmission_id=tid) == [0, 1]  # Generating already: nothing re-read
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.template_version == "1"
    assert transmission.template_snapshot == {"content": V1, "options": {"click_tracking": True}}


def test_a_pinned_transmission_is_prepared_without_reading_the_template(
    api, relay, events, django_assert_max_num_queries
):
    _template()
    tid = _accept(api)
    _start(tid)
    Template.objects.filter(pk=TEMPLATE).delete()
    transmission = Transmission.objects.get(pk=tid)
    with django_assert_max_num_queries(0):  # compiled from the row alone
        prepared = generation.prepare(transmission)
    assert prepared.template_version == "1" and prepared.content == V1
