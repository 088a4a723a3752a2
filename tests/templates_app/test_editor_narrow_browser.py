"""The template editor for a newcomer, in a real browser (issue 15): at a phone's width its
fields stack at full width; the sample data starts from a recipient list's first entry, follows
the list chosen, and what it lacks is said before a test send."""

from __future__ import annotations

import pytest
from django.db import connections

from recipient_lists.services import recipient_list_create
from templates_app.services import template_create
from tests.browser import needs_chromium, screenshot
from transmissions.models import Transmission

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

CONTENT = {"from": {"email": "shop@example.com"}, "subject": "Hi {{first_name}}", "html": "<p>Hi {{first_name}}</p>"}
FIELDS = ("#id_name", "#id_from_email", "#id_from_name", "#id_subject", "#id_html", "#id_text")


def recipient(email: str, first_name: str) -> dict:
    return {"address": {"email": email}, "return_path": "", "tags": [], "metadata": {},
            "substitution_data": {"first_name": first_name}}  # fmt: skip


@pytest.fixture
def template(db):
    return template_create(template_id="welcome", name="Welcome", content=CONTENT, options={})


@pytest.mark.parametrize("path", ["add/", "welcome/change/"])
def test_at_400_px_the_editor_s_fields_stack_at_full_width(
    template, path, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page(live_server.url + "/admin/templates_app/template/" + path)
    page.set_viewport_size({"width": 400, "height": 800})
    page.wait_for_timeout(200)
    widths = {field: page.locator(field).bounding_box()["width"] for field in FIELDS}
    assert all(width >= 300 for width in widths.values()), widths
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    screenshot(page, "template-editor-400-" + path.split("/")[0])
    connections.close_all()


def test_the_sample_data_comes_from_the_first_list_follows_the_list_and_gaps_are_said_before_a_test_send(
    template, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    recipient_list_create(list_id="a-list", name="A", recipients=[recipient("ada@example.com", "Ada")])
    recipient_list_create(list_id="b-list", name="B", recipients=[recipient("bob@example.com", "Bob")])
    page = browser_page(live_server.url + "/admin/templates_app/template/welcome/change/")
    page.wait_for_function("() => document.getElementById('tpl-sample').value.includes('Ada')")
    page.locator("#tpl-subject").filter(has_text="Hi Ada").wait_for()
    assert page.locator("#tpl-missing").is_hidden()

    page.select_option("#tpl-sample-list", "b-list")
    page.locator("#tpl-subject").filter(has_text="Hi Bob").wait_for()

    page.fill("#tpl-sample", "{}")
    page.locator("#tpl-missing").filter(has_text="rendered empty: first_name").wait_for()
    assert "first_name" in page.locator("#tpl-missing-send").inner_text()
    screenshot(page, "template-editor-missing-sample-data")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.fill("#tpl-test-send input[name=address]", "me@example.com")
    page.click("#tpl-test-send button[type=submit]")
    page.wait_for_timeout(300)
    assert asked == ["Not in the sample data, sent empty: first_name. Send anyway?"]
    assert Transmission.objects.count() == 0
    connections.close_all()
