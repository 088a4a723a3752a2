"""Sending and canceling ask for a permission beyond staff status (found by an attacker: any
staff user could send and cancel): send needs "Can add transmission", cancel "Can change
transmission" (a superuser has both). Without it: the console's 403 page, and the Send link and
cancel button are not shown. Reading pages stay open to every staff user."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from templates_app.services import template_create
from tests.console.helpers import CONTENT, created_id, rendered_form, scheduled
from transmissions.models import Transmission, TransmissionState

PAGE = "/transmissions/new/"


@pytest.fixture
def promo(db):
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})


@pytest.fixture
def staff_with(client, django_user_model):
    """``staff_with(*codenames)``: a client signed in as a staff user (no superuser) with these
    permissions of the transmissions app."""

    def sign_in(*codenames: str):
        user = django_user_model.objects.create_user("clerk", password="x-Pw-123456", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="transmissions", codename__in=codenames)
        )
        client.force_login(user)
        return client

    return sign_in


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_staff_user_without_the_add_permission_gets_403_and_sends_nothing(staff_with, promo, method):
    client = staff_with()
    response = getattr(client, method)(PAGE, {"template": "promo", "addresses": "victim@example.org"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in html and "may not send transmissions" in html
    assert "Can add transmission" in html and 'href="/"' in html
    assert not Transmission.objects.exists()


def test_without_the_add_permission_no_page_links_to_send(staff_with, promo):
    client = staff_with("view_transmission")
    for page in ("/", "/transmissions/", "/messages/"):
        response = client.get(page)
        assert response.status_code == 200, page  # reading stays open to staff
        assert 'href="/transmissions/new/">Send</a>' not in response.content.decode(), page
        assert 'id="send-link"' not in response.content.decode(), page


def test_the_add_permission_lets_a_staff_user_send(staff_with, promo):
    client = staff_with("add_transmission")
    assert 'href="/transmissions/new/">Send</a>' in client.get("/transmissions/").content.decode()
    created_id(client.post(PAGE, rendered_form(client)))
    assert Transmission.objects.count() == 1


def test_without_the_change_permission_cancel_is_403_and_its_button_is_hidden(staff_with, api):
    tid = scheduled(api)
    client = staff_with("add_transmission")
    page = client.get(f"/transmissions/{tid}/").content.decode()
    assert 'id="cancel"' not in page and "by a user with the permission to change transmissions" in page
    response = client.post(f"/transmissions/{tid}/cancel/")
    assert response.status_code == 403 and "may not cancel scheduled transmissions" in response.content.decode()
    assert Transmission.objects.get(pk=tid).state == TransmissionState.SUBMITTED


def test_the_change_permission_lets_a_staff_user_cancel(staff_with, api):
    tid = scheduled(api)
    client = staff_with("change_transmission")
    assert 'id="cancel"' in client.get(f"/transmissions/{tid}/").content.decode()
    assert client.post(f"/transmissions/{tid}/cancel/").status_code == 303
    assert Transmission.objects.get(pk=tid).state == TransmissionState.CANCELED


def test_the_template_editor_offers_send_this_template_only_with_the_add_permission(client, django_user_model, promo):
    editor = "/admin/templates_app/template/promo/change/"
    user = django_user_model.objects.create_user("writer", password="x-Pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="templates_app"))
    client.force_login(user)
    assert client.get(editor).status_code == 200
    assert 'id="tpl-send"' not in client.get(editor).content.decode()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="transmissions", codename="add_transmission")
    )
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    assert 'id="tpl-send"' in client.get(editor).content.decode()
