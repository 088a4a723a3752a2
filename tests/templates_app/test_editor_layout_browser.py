"""The template editor's layout at 1280 px in a real browser: a syntax error after a save is
shown once, at its part, without squeezing the editor; the link check table fits its panel."""

from __future__ import annotations

import pytest
from django.db import connections

from templates_app.services import template_create
from tests.browser import needs_chromium, screenshot

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

CONTENT = {
    "from": {"email": "shop@example.com"},
    "subject": "Hi {{name}}",
    "html": "<p>Hello {{name}}</p>",
}
LONG = "https://example.com/a/very/long/path/" + "segment-" * 20 + "?utm_source=newsletter&utm_medium=email&x={{id}}"
LINKS = (
    f'<a href="{LONG}" data-msys-linkname="a-rather-long-link-name-for-the-header-button">Go</a>\n'
    '<a href="mailto:help@example.com">Help</a>\n'
    '<a href="https://example.com/private" data-msys-clicktrack="0">Private</a>\n'
    '<a href="{{unsubscribe_url}}">Unsubscribe</a>'
)


@pytest.fixture
def template(db):
    return template_create(template_id="welcome", name="Welcome", content=CONTENT, options={})


def test_a_saved_syntax_error_is_shown_once_at_its_part_and_keeps_the_editor_wide(
    template, staff_user, live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page(live_server.url + "/admin/templates_app/template/welcome/change/")
    before = page.locator("#id_html").bounding_box()["width"]
    page.fill("#id_html", "<p>Hello</p>\n<p>{{ name </p>")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    page.locator("#tpl-status").filter(has_text="Not rendered").wait_for()
    html_error = page.get_by_text("html, line 2:")
    assert html_error.count() == 1, [html_error.nth(i).inner_text() for i in range(html_error.count())]
    row = page.locator(".form-row.field-html")
    assert row.get_by_text("html, line 2:").count() == 1  # at the part, not only in the side panel
    screenshot(page, "template-editor-saved-error")
    after = page.locator("#id_html").bounding_box()["width"]
    assert after >= before - 2 and after > 250, (before, after)
    connections.close_all()


def test_the_link_check_table_fits_its_panel_at_1280(template, staff_user, live_server, browser_page, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page(live_server.url + "/admin/templates_app/template/welcome/change/")
    page.fill("#id_html", LINKS)
    page.click("#tpl-check")
    page.locator("#tpl-links tbody tr.tpl-link").nth(3).wait_for()
    side = page.locator("#tpl-side").bounding_box()
    table = page.locator("#tpl-links").bounding_box()
    assert table["x"] + table["width"] <= side["x"] + side["width"] + 0.5, (table, side)
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('#tpl-links th, #tpl-links td')]
              .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent)"""
    )
    assert overflowing == []
    for name in ("where", "link name", "target"):
        header = page.locator("#tpl-links th", has_text=name).bounding_box()
        assert header["width"] >= 60 and header["x"] + header["width"] <= side["x"] + side["width"] + 0.5, name
    assert page.locator("#tpl-side").evaluate("e => e.scrollWidth <= e.clientWidth")
    assert page.locator("#tpl-links tr.tpl-target td").nth(0).bounding_box()["height"] < 120
    rows = page.locator("#tpl-links tr.tpl-link")
    # a tracked link shows the position its clicks report (the report's Position); untracked
    # links have none, only their line (found by a newcomer: the mailto link was counted)
    assert rows.nth(0).locator("td").first.inner_text().split() == ["html", "position", "1,", "line", "1"]
    assert rows.nth(1).locator("td").first.inner_text().split() == ["html", "line", "2"]
    mailto = rows.nth(1).locator("td").nth(1)
    assert mailto.inner_text().split("\n") == ["no: mailto: links are never tracked", "API reason: mailto"]
    assert mailto.locator("small code").inner_text() == "mailto"
    assert rows.nth(1).locator("td").nth(2).inner_text() == "—"  # no link name, said as such
    screenshot(page, "template-editor-link-check")
    connections.close_all()


def test_the_sample_data_and_its_list_entry_survive_save_publish_and_test_send(
    template, staff_user, live_server, browser_page, monkeypatch
):
    from recipient_lists.services import recipient_list_create

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # browser_page runs an event loop in this thread
    recipient_list_create(
        list_id="vip", name="VIP", description="", attributes={},
        recipients=[{"address": {"email": "a@example.com"}, "substitution_data": {"name": "Ada"}},
                    {"address": {"email": "b@example.com"}, "substitution_data": {"name": "Bob"}}],
    )  # fmt: skip
    page = browser_page(live_server.url + "/admin/templates_app/template/welcome/change/")
    page.locator("#tpl-sample-list option[value=vip]").wait_for(state="attached")
    page.select_option("#tpl-sample-list", "vip")
    page.fill("#tpl-sample-index", "2")
    page.click("#tpl-sample-load")
    page.frame_locator("#tpl-frame").locator("p").filter(has_text="Hello Bob").wait_for()

    def kept() -> None:
        page.frame_locator("#tpl-frame").locator("p").filter(has_text="Hello Bob").wait_for()
        assert '"Bob"' in page.input_value("#tpl-sample")
        page.wait_for_function("document.getElementById('tpl-sample-list').value === 'vip'")
        assert (page.input_value("#tpl-sample-list"), page.input_value("#tpl-sample-index")) == ("vip", "2")

    page.click("input[name=_continue]")
    page.locator("text=was changed successfully").wait_for()
    kept()
    page.click("input[name=_publish]")
    page.locator("text=Published welcome").wait_for()
    kept()
    page.fill("#tpl-test-send input[name=address]", "me@example.com")
    page.click("#tpl-test-send button[type=submit]")
    page.locator("text=Test send").first.wait_for()
    page.wait_for_url("**/welcome/change/")
    kept()
    from transmissions.models import Transmission

    assert Transmission.objects.get().substitution_data == {"name": "Bob"}
    connections.close_all()
