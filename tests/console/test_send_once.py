"""One send form sends once (found by an attacker: a double click, a resubmit, Back then Send
made two transmissions). The form carries a one-time token made when it is rendered; a second
POST of it creates nothing and goes to the transmission the first created, saying so."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from console import services
from console.models import SendSubmission
from templates_app.services import template_create
from tests.console.helpers import CONTENT, created_id, errors_shown, rendered_form, send_empty_for
from tests.console.helpers import SEND_PAGE as PAGE
from transmissions.models import Transmission


@pytest.fixture
def promo(db):
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})


def test_the_same_form_sent_twice_creates_one_transmission_and_says_so(client, staff_user, promo):
    client.force_login(staff_user)
    data = rendered_form(client)
    first = created_id(client.post(PAGE, data))
    again = client.post(PAGE, data, follow=True)
    assert again.redirect_chain == [(f"/transmissions/{first}/", 303)]
    assert f"This form was already sent: it created transmission {first}" in again.content.decode()
    assert list(Transmission.objects.values_list("pk", flat=True)) == [first]


def test_each_rendered_form_sends_once(client, staff_user, promo):
    client.force_login(staff_user)
    created_id(client.post(PAGE, rendered_form(client)))
    created_id(client.post(PAGE, {**rendered_form(client), "addresses": "bob@example.com"}))
    assert Transmission.objects.count() == 2


def test_the_same_send_again_in_a_new_form_asks_first_and_sends_when_confirmed(client, staff_user, promo):
    # Back after a send, then Send: a new form (a new token), the fields restored by the browser.
    client.force_login(staff_user)
    first = created_id(client.post(PAGE, rendered_form(client)))
    again = rendered_form(client)
    asked = client.post(PAGE, {**again, "addresses": "Ann <ANN@example.com>\n"})
    html = asked.content.decode()
    assert asked.status_code == 409
    assert "Not sent: you sent this under a minute ago." in html
    assert f'Transmission <a href="/transmissions/{first}/">{first}</a>' in html
    assert '<input type="checkbox" name="resend" id="id_resend"> Send it again anyway' in html
    assert list(Transmission.objects.values_list("pk", flat=True)) == [first]
    second = created_id(client.post(PAGE, {**again, "resend": "on"}))
    assert second != first and Transmission.objects.count() == 2


@pytest.mark.parametrize(
    "change",
    [{"addresses": "ann@example.com\nbob@example.com"}, {"campaign_id": "autumn"}, {"template": "other"}],
)
def test_a_different_send_in_a_new_form_is_not_asked_about(client, staff_user, promo, change):
    template_create(template_id="other", name="Other", published=True, content=CONTENT, options={})
    client.force_login(staff_user)
    created_id(client.post(PAGE, rendered_form(client)))
    changed = {**rendered_form(client), **change}
    changed["send_empty"] = send_empty_for(
        changed["template"], changed["addresses"]
    )  # asked again for another template
    created_id(client.post(PAGE, changed))
    assert Transmission.objects.count() == 2


def test_the_same_send_by_another_user_or_ten_minutes_later_is_not_asked_about(
    client, staff_user, django_user_model, promo
):
    client.force_login(staff_user)
    created_id(client.post(PAGE, rendered_form(client)))
    other = django_user_model.objects.create_superuser("other", "other@example.com", "pw-other-123")
    client.force_login(other)
    created_id(client.post(PAGE, rendered_form(client)))
    SendSubmission.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    created_id(client.post(PAGE, rendered_form(client)))
    assert Transmission.objects.count() == 3


def test_the_same_form_twice_still_says_already_sent_not_asks(client, staff_user, promo):
    client.force_login(staff_user)
    data = rendered_form(client)
    first = created_id(client.post(PAGE, data))
    again = client.post(PAGE, {**data, "resend": "on"}, follow=True)
    assert again.redirect_chain == [(f"/transmissions/{first}/", 303)]
    assert "This form was already sent" in again.content.decode()
    assert Transmission.objects.count() == 1


@pytest.mark.parametrize(("token", "said"), [("", "has no submission token"), ("a b", "is not valid")])
def test_a_form_without_its_token_is_refused(client, staff_user, promo, token, said):
    client.force_login(staff_user)
    response = client.post(PAGE, {"template": "promo", "addresses": "ann@example.com", "submission": token})
    assert response.status_code == 400 and said in response.content.decode()
    assert not Transmission.objects.exists()


def test_a_refused_send_does_not_use_up_the_form(client, staff_user, promo):
    client.force_login(staff_user)
    data = rendered_form(client)
    refused = client.post(PAGE, {**data, "campaign_id": "c" * 65})  # the API's limit: 64 bytes
    assert refused.status_code == 400 and "campaign_id" in errors_shown(refused)
    created_id(client.post(PAGE, data))
    assert Transmission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_parallel_posts_of_one_form_create_one_transmission(staff_user, monkeypatch):
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})
    create = services.transmission_create

    def slow_create(**kwargs):  # both requests are inside the send at once
        time.sleep(0.5)
        return create(**kwargs)

    monkeypatch.setattr(services, "transmission_create", slow_create)
    browser = Client()
    browser.force_login(staff_user)
    data = rendered_form(browser)
    answers: list[int] = []

    def post() -> None:
        try:
            tab = Client()
            tab.force_login(staff_user)
            answers.append(tab.post(PAGE, data).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [303, 303]
    assert Transmission.objects.count() == 1


def test_a_form_sent_over_a_week_ago_is_forgotten(client, staff_user, promo):
    """One row per console send is kept a week (console.services.SUBMISSION_KEPT), then dropped."""
    from datetime import timedelta

    from django.utils import timezone

    from console.models import SendSubmission

    client.force_login(staff_user)
    old = rendered_form(client)
    created_id(client.post(PAGE, old))
    SendSubmission.objects.update(created_at=timezone.now() - services.SUBMISSION_KEPT - timedelta(minutes=1))
    created_id(client.post(PAGE, rendered_form(client)))
    assert SendSubmission.objects.count() == 1 and not SendSubmission.objects.filter(token=old["submission"]).exists()
