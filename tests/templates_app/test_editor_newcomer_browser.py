"""The template editor as a newcomer met it (issue 15): an empty add form is not shown as wrong;
a recipient list entry previews {{address.name}} as the message says it; a refused test send is
said beside its button; the typed sample data outlives a publish and a second tab."""

from __future__ import annotations

import pytest
from django.db import connections

from recipient_lists.services import recipient_list_create
from templates_app.services import template_create
from tests.browser import needs_chromium, screenshot
from transmissions.models import Transmission

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

CONTENT = {"from": {"email": "news@example.com"}, "subject": "Hello {{name}}", "html": "<h1>Hello {{name}}!</h1>"}


@pytest.fixture
def template(db):
    return template_create(template_id="news", name="News", content=CONTENT, options={})


def grace_list() -> None:
    recipient_list_create(
        list_id="people", name="People", description="", attributes={},
        recipients=[{"address": {"email": "grace@example.com", "name": "Grace Hopper"},
                     "substitution_data": {"id": "101"}}],
    )  # fmt: skip


def test_an_empty_add_form_shows_no_error_until_the_person_types(staff_user, live_server, browser_page, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # browser_page runs an event loop in this thread
    page = browser_page(live_server.url + "/admin/templates_app/template/add/")
    status = page.locator("#tpl-status")
    status.filter(has_text="Fill in From email to preview.").wait_for()
    assert page.locator(".tpl-field-error").count() == 0
    assert "required" not in page.locator("#tpl-errors").inner_text()
    screenshot(page, "template-add-untouched")

    page.fill("#id_from_email", "news@example.com")
    page.fill("#id_from_email", "")  # typed, then emptied: now it is the person's error
    page.locator(".tpl-field-error").filter(has_text="content.from.email is a required field").wait_for()
    connections.close_all()


def test_a_list_entry_previews_address_name_and_name_points_to_it(
    template, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    grace_list()
    page = browser_page(live_server.url + "/admin/templates_app/template/news/change/")
    page.wait_for_function("() => document.getElementById('tpl-sample').value.includes('Grace Hopper')")
    hint = page.locator("#tpl-missing").filter(has_text="Use {{address.name}} for the recipient's name")
    hint.wait_for()
    assert hint.inner_text() == (
        "Not in the sample data, rendered empty: name. Use {{address.name}} for the recipient's name (Grace Hopper)."
    )

    page.fill("#id_subject", "Hello {{address.name}}")
    page.fill("#id_html", "<h1>Hello {{address.name}}!</h1>")
    page.frame_locator("#tpl-frame").locator("h1").filter(has_text="Hello Grace Hopper!").wait_for()
    page.locator("#tpl-subject").filter(has_text="Hello Grace Hopper").wait_for()
    page.wait_for_function("() => document.getElementById('tpl-missing').hidden")
    screenshot(page, "template-editor-address-name")

    page.fill("#tpl-sample", '{"id": "101"}')  # no recipient: said, not a silent "Hello !"
    page.locator("#tpl-missing").filter(has_text="rendered empty: address.name").wait_for()
    connections.close_all()


def test_a_refused_test_send_is_said_beside_its_button_and_the_sample_outlives_publish_and_a_new_tab(
    template, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page(live_server.url + "/admin/templates_app/template/news/change/")
    page.set_viewport_size({"width": 1280, "height": 700})
    page.fill("#tpl-sample", '{"id": "42"}')
    page.locator("#tpl-missing-send").filter(has_text="rendered empty: name").wait_for()
    page.fill("#tpl-test-send input[name=address]", "me@example.com")
    page.evaluate("window.scrollTo(0, 0)")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#tpl-test-send button[type=submit]")
    refused = page.locator("#tpl-send-refused")
    refused.filter(has_text="Not sent: the sample data lacks name").wait_for()
    assert refused.is_visible() and Transmission.objects.count() == 0
    box, button = refused.bounding_box(), page.locator("#tpl-test-send button[type=submit]").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 700, box  # in view
    assert abs(box["y"] - button["y"]) < 60, (box, button)  # beside the button, not a screen away
    screenshot(page, "template-test-send-refused")

    page.click("input[name=_publish]")
    page.locator("text=Published news").wait_for()
    assert page.input_value("#tpl-sample") == '{"id": "42"}'
    page.evaluate("sessionStorage.clear()")  # as a second tab, which has its own sessionStorage
    page.goto(live_server.url + "/admin/templates_app/template/news/change/")
    page.wait_for_function("() => document.getElementById('tpl-sample').value === '{\"id\": \"42\"}'")
    page.locator("#tpl-missing").filter(has_text="rendered empty: name").wait_for()
    connections.close_all()
