"""The send page, ``/transmissions/new/``: a published template to a stored list or typed
addresses, now or later, through the service and declaration of ``POST /api/v1/transmissions``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from recipient_lists.services import recipient_list_create
from templates_app.services import template_create
from tests.console.helpers import CONTENT, created_id, errors_shown, send_empty_for
from tests.console.helpers import SEND_PAGE as PAGE
from tests.console.helpers import send_form as form
from tests.transmissions.helpers import URL as API
from transmissions.models import Message, Transmission, TransmissionState
from transmissions.sending import chunk_send
from transmissions.services import transmission_start_generation

#: What an API client leaves out: not part of a comparison of two transmissions.
_VARYING = {"id", "generation_start_time", "generation_end_time", "start_time", "description"}


@pytest.fixture
def shop(db):
    """A published template ``promo``, a draft-only ``draft``, and a list ``friends`` of three."""
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})
    template_create(template_id="draft", name="Draft", content=CONTENT, options={})
    recipients = [
        {"address": {"email": f"f{n}@example.com", "name": f"F{n}"}, "substitution_data": {"name": f"F{n}"}}
        for n in range(3)
    ]
    recipient_list_create(list_id="friends", name="Friends", recipients=recipients)


def detail(api, tid: int) -> dict:
    return api.get(f"{API}/{tid}").json()["results"]["transmission"]


def send_all(tid: int) -> None:
    for chunk in transmission_start_generation(transmission_id=tid):
        chunk_send(transmission_id=tid, chunk=chunk, token="test")


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_and_non_staff_users_are_sent_to_sign_in_and_send_nothing(client, shop, django_user_model, method):
    response = getattr(client, method)(PAGE, form())
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(django_user_model.objects.create_user("pat", password="pw-for-tests"))
    response = getattr(client, method)(PAGE, form())
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not Transmission.objects.exists()


def test_the_form_offers_published_templates_and_every_list(staff, shop):
    html = staff.get(PAGE).content.decode()
    assert '<option value="promo">promo — Promo</option>' in html
    assert 'value="draft"' not in html  # nothing published to send
    assert '<option value="friends">friends — Friends (3 recipients)</option>' in html
    assert "UTC" in html and "csrfmiddlewaretoken" in html


def test_a_template_link_preselects_it(staff, shop):
    html = staff.get(PAGE + "?template=promo&list=friends").content.decode()
    assert '<option value="promo" selected>' in html and '<option value="friends" selected>' in html
    assert staff.get(PAGE + "?template=" + "x" * 10_000).status_code == 200


def test_send_now_to_a_list_creates_what_the_api_would_and_it_progresses(staff, shop, api, relay):
    tid = created_id(staff.post(PAGE, form()))
    same = api.post(
        API,
        {"campaign_id": "spring", "description": "from the API", "content": {"template_id": "promo"},
         "recipients": {"list_id": "friends"}},
        format="json",
    )  # fmt: skip
    assert same.status_code == 200, same.content
    ours, theirs = detail(api, tid), detail(api, int(same.json()["results"]["id"]))
    assert {k: v for k, v in ours.items() if k not in _VARYING} == {
        k: v for k, v in theirs.items() if k not in _VARYING
    }
    assert ours["content"]["template_id"] == "promo" and ours["recipients"] == {"list_id": "friends"}
    assert ours["description"] == "from the console" and ours["state"] == "submitted"
    emails = Message.objects.filter(transmission_id=tid).order_by("id").values_list("email", flat=True)
    assert list(emails) == ["f0@example.com", "f1@example.com", "f2@example.com"]
    page = staff.get(f"/transmissions/{tid}/").content.decode()
    assert f"Transmission {tid} created: 3 recipients, sending now." in page
    send_all(tid)
    page = staff.get(f"/transmissions/{tid}/").content.decode()
    assert 'id="num_generated">3<' in page and 'id="state" data-state="Success">Success' in page
    assert sorted(rcpt for message in relay.received for rcpt in message.rcpt_tos) == [
        "f0@example.com", "f1@example.com", "f2@example.com"
    ]  # fmt: skip


def test_typed_addresses_and_chosen_options_are_sent_as_given(staff, shop, api):
    typed = "ada@example.com\n\n  Bob <bob@example.com>  \n"
    tid = created_id(
        staff.post(
            PAGE,
            form(
                recipient_list="",
                addresses=typed,
                open_tracking="off",
                click_tracking="on",
                transactional="on",
                send_empty=send_empty_for("promo", typed),
            ),
        )
    )
    answer = detail(api, tid)
    chosen = {key: answer["options"][key] for key in ("open_tracking", "click_tracking", "transactional")}
    assert chosen == {"open_tracking": False, "click_tracking": True, "transactional": True}
    messages = Message.objects.filter(transmission_id=tid).order_by("id")
    assert [m.email for m in messages] == ["ada@example.com", "bob@example.com"]
    assert messages[1].recipient["address"] == {"email": "bob@example.com", "name": "Bob"}


def test_options_left_as_the_template_says_are_not_given(staff, shop, api):
    answer = detail(api, created_id(staff.post(PAGE, form())))
    assert [answer["options"].get(key, "") for key in ("open_tracking", "click_tracking", "transactional")] == [""] * 3
    assert answer["start_time"] == ""


def test_send_later_is_scheduled_and_can_be_canceled_from_its_page(staff, shop, api):
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    tid = created_id(staff.post(PAGE, form(start_date=f"{later:%Y-%m-%d}", start_time=f"{later:%H:%M:%S}")))
    tx = Transmission.objects.get(pk=tid)
    assert tx.state == TransmissionState.SUBMITTED and tx.start_time == later
    page = staff.get(f"/transmissions/{tid}/").content.decode()
    assert f"scheduled for {later:%Y-%m-%d %H:%M:%S} UTC" in page and 'id="cancel"' in page
    staff.post(f"/transmissions/{tid}/cancel/")
    assert Transmission.objects.get(pk=tid).state == TransmissionState.CANCELED


def test_a_start_time_without_seconds_is_read_as_utc(staff, shop):
    later = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    tid = created_id(staff.post(PAGE, form(start_date=f"{later:%Y-%m-%d}", start_time=f"{later:%H:%M}")))
    assert Transmission.objects.get(pk=tid).start_time == later


def test_a_raw_post_may_give_the_whole_start_in_start_time(staff, shop):
    later = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    tid = created_id(staff.post(PAGE, form(start_time=later.strftime("%Y-%m-%d %H:%M"))))
    assert Transmission.objects.get(pk=tid).start_time == later


HUGE = "x" * 200_000


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"campaign_id": HUGE}, "campaign_id"),
        ({"description": HUGE}, "description"),
        ({"template": HUGE}, "does not exist or is not published"),
        ({"template": "draft"}, "does not exist or is not published"),
        ({"template": "nope"}, "does not exist or is not published"),
        ({"template": ""}, "required"),
        ({"recipient_list": "../../etc"}, "That recipient list does not exist."),
        ({"recipient_list": "", "addresses": ""}, "Choose a recipient list or type at least one address."),
        ({"addresses": "ada@example.com"}, "not both"),
        ({"recipient_list": "", "addresses": "ada@example.com\nnot an address"}, "line 2: address.email"),
        ({"recipient_list": "", "addresses": HUGE}, "line 1"),
        ({"start_time": "tomorrow"}, "is not a date and time"),
        ({"start_time": "2026-02-30T10:00"}, "is not a date and time"),
        ({"start_time": "99999-01-01T00:00"}, "is not a date and time"),
        ({"start_time": HUGE}, "is not a date and time"),
        ({"start_time": "9999-12-31T23:59"}, "seconds in the future"),
        ({"open_tracking": "maybe"}, "Select a valid choice"),
        ({"campaign_id": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_hostile_input_is_refused_on_the_form_never_a_500(staff, shop, overrides, said):
    response = staff.post(PAGE, form(**overrides))
    assert response.status_code == 400
    assert said in errors_shown(response), errors_shown(response)[:2000]
    assert not Transmission.objects.exists()


def test_a_refused_form_keeps_what_was_typed(staff, shop):
    typed = form(campaign_id="c" * 65, description="keep <me>", start_date="2030-01-02", start_time="03:04")
    response = staff.post(PAGE, typed)
    html = response.content.decode()
    assert response.status_code == 400 and "invalid data format/type (1300): campaign_id" in errors_shown(response)
    assert 'value="' + "c" * 65 + '"' in html and "keep &lt;me&gt;" in html
    assert 'value="2030-01-02"' in html and 'value="03:04"' in html
    assert '<option value="friends" selected>' in html


def test_a_list_deleted_between_the_form_and_the_send_is_the_api_s_error(staff, shop, monkeypatch):
    from console import forms

    monkeypatch.setattr(forms, "recipient_list_list", lambda: _Fake([("gone", "Gone", 1)]))
    response = staff.post(PAGE, form(recipient_list="gone"))
    assert response.status_code == 400 and "gone" in errors_shown(response)
    assert not Transmission.objects.exists()


class _Fake:
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def values_list(self, *_fields: str) -> list[tuple]:
        return self.rows


def test_the_send_needs_the_csrf_token(shop, staff_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    assert browser.post(PAGE, form()).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(PAGE).content.decode()).group(1)
    assert browser.post(PAGE, {**form(), "csrfmiddlewaretoken": token}).status_code == 303


def test_the_page_is_linked_from_the_list_the_overview_and_a_published_template(staff, shop):
    assert 'href="/transmissions/new/"' in staff.get("/transmissions/").content.decode()
    assert 'href="/transmissions/new/"' in staff.get("/").content.decode()
    published = staff.get("/admin/templates_app/template/promo/change/").content.decode()
    assert 'href="/transmissions/new/?template=promo" id="tpl-send">Send this template</a>' in published
    assert 'id="tpl-send"' not in staff.get("/admin/templates_app/template/draft/change/").content.decode()
