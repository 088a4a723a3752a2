"""The send page asks before typed addresses get a template whose variables none of them
supplies (found by a newcomer: ``{{id}}`` went out empty without a word). Typed addresses carry
no substitution data; the names are found as the template editor finds what its sample data
lacks (``console.selectors.template_data_missing``)."""

from __future__ import annotations

import re

import pytest

from templates_app.services import template_create
from tests.console.helpers import CONTENT, created_id, send_empty_for
from tests.console.helpers import SEND_PAGE as PAGE
from tests.console.helpers import send_form as form
from transmissions.models import Transmission

READS = {**CONTENT, "subject": "Hi {{address.name}}", "html": '<a href="https://example.com/?u={{id}}">go</a>',
         "text": "{{if vip}}VIP {{end}}{{first_name}}"}  # fmt: skip


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    template_create(template_id="reads", name="Reads", published=True, content=READS, options={})
    template_create(template_id="plain", name="Plain", published=True, content={**CONTENT, "subject": "Hi",
                    "html": "<p>Hello</p>", "text": "Hello"}, options={})  # fmt: skip
    return client


def typed(addresses: str, **overrides: str) -> dict[str, str]:
    return form(**{"template": "reads", "recipient_list": "", "addresses": addresses, **overrides})


def warning(html: str) -> str:
    found = re.search(r'<div class="resend" id="missing-warning"[^>]*>(.*?)</div>', html, re.S)
    assert found, html[:3000]
    return " ".join(found[1].split())


def test_typed_addresses_to_a_template_reading_variables_are_asked_about_first(staff):
    data = typed("ada@example.com\nbob@example.com")
    asked = staff.post(PAGE, data)
    assert asked.status_code == 409 and not Transmission.objects.exists()
    said = warning(asked.content.decode())
    assert "the template reads address.name, vip, first_name, id, which none of these addresses supplies." in said
    assert "they would be sent empty" in said
    box = send_empty_for("reads", "ada@example.com\nbob@example.com")
    assert f'<input type="checkbox" name="send_empty" id="id_send_empty" value="{box}"> Send with them empty' in said
    assert 'id="error-summary"' not in asked.content.decode()
    assert "ada@example.com\nbob@example.com</textarea>" in asked.content.decode()  # the form is kept
    assert staff.post(PAGE, {**data, "send_empty": "on"}).status_code == 409  # not what the box says
    created_id(staff.post(PAGE, {**data, "send_empty": box}))
    assert Transmission.objects.count() == 1


def test_a_display_name_supplies_address_name_and_one_address_is_said_so(staff):
    said = warning(staff.post(PAGE, typed("Ada <ada@example.com>")).content.decode())
    assert "the template reads vip, first_name, id, which this address does not supply." in said


def test_nothing_is_asked_when_the_template_reads_nothing_or_a_list_is_sent(staff):
    created_id(staff.post(PAGE, typed("ada@example.com", template="plain")))
    # a list's recipients carry their own data: not asked (as before)
    from recipient_lists.services import recipient_list_create

    recipient_list_create(list_id="vips", name="VIPs", recipients=[{"address": {"email": "v@example.com"}}])
    created_id(staff.post(PAGE, form(template="reads", recipient_list="vips")))
    assert Transmission.objects.count() == 2


def test_the_confirmation_is_kept_through_the_same_send_again_question(staff):
    data = typed("ada@example.com", send_empty=send_empty_for("reads", "ada@example.com"))
    first = created_id(staff.post(PAGE, data))
    again = staff.post(PAGE, {**data, "submission": "a-new-form-token-1234"})
    html = again.content.decode()
    assert again.status_code == 409 and 'id="resend-warning"' in html and 'id="missing-warning"' not in html
    assert f'<input type="hidden" name="send_empty" value="{data["send_empty"]}">' in html  # not asked twice
    second = created_id(staff.post(PAGE, {**data, "submission": "a-new-form-token-1234", "resend": "on"}))
    assert second != first and Transmission.objects.count() == 2


def test_a_box_ticked_for_one_template_does_not_send_another(staff):
    """An attacker's finding: the box, ticked (or carried in a form shown again after another
    error) for one template, sent a template that reads other names, without asking."""
    template_create(template_id="coupon", name="Coupon", published=True,
                    content={**CONTENT, "subject": "Hi", "html": "<p>{{coupon_code}}</p>", "text": "x"},
                    options={})  # fmt: skip
    ticked = send_empty_for("reads", "ada@example.com")
    refused = staff.post(PAGE, typed("ada@example.com", send_empty=ticked, start_date="2020-01-01", start_time="10:00"))
    assert refused.status_code == 400  # another error: the form comes back, the box's value carried
    assert f'name="send_empty" value="{ticked}"' in refused.content.decode()
    switched = staff.post(PAGE, typed("ada@example.com", send_empty=ticked, template="coupon"))
    assert switched.status_code == 409 and "coupon_code" in warning(switched.content.decode())
    assert not Transmission.objects.exists()
    # other addresses with other names missing are asked again too
    asked = staff.post(PAGE, typed("Ada <ada@example.com>", send_empty=ticked))
    assert asked.status_code == 409 and not Transmission.objects.exists()
