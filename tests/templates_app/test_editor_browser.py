"""The template editor in a real browser (issue 15, Deliver 5): create a template, type in the
editor and see the preview follow, see a syntax error at its line, run the link check, publish."""

from __future__ import annotations

import pytest
from django.db import connections

from templates_app.models import Template
from tests.browser import needs_chromium, screenshot

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

HTML = (
    "<h1>Hello {{name}}</h1>\n"
    '<a href="https://example.com/start?u={{id}}" data-msys-linkname="start">Start</a>\n'
    '<a href="mailto:help@example.com">Help</a>\n'
    '<a href="https://example.com/private" data-msys-clicktrack="0">Private</a>'
)


def test_create_type_preview_error_link_check_publish(staff_user, live_server, browser_page, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the checks below read the
    # database from it (the live server answers from its own thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page(live_server.url + "/admin/templates_app/template/add/")
    page.fill("#id_template_id", "welcome")
    page.fill("#id_name", "Welcome")
    page.fill("#id_from_email", "shop@example.com")
    page.fill("#id_subject", "Hi {{name}}")
    page.fill("#id_html", HTML)
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/templates_app/template/")
    assert Template.objects.get(pk="welcome").has_draft

    page.goto(live_server.url + "/admin/templates_app/template/welcome/change/")
    page.fill("#tpl-sample", '{"name": "Ada", "id": "42"}')
    frame = page.frame_locator("#tpl-frame")
    frame.locator("h1").filter(has_text="Hello Ada").wait_for()
    page.locator("#tpl-subject").filter(has_text="Hi Ada").wait_for()

    page.locator("#id_html").press_sequentially("\n<p>{{name}}!</p>")
    frame.locator("p").filter(has_text="Ada!").wait_for()

    page.fill("#id_html", HTML + "\n\n{{ if }}")
    error = page.locator(".tpl-field-error")
    error.filter(has_text="html, line 6:").wait_for()

    page.fill("#id_html", HTML)
    page.locator(".tpl-field-error").wait_for(state="detached")
    page.click("#tpl-check")
    rows = page.locator("#tpl-links tbody tr.tpl-link")
    rows.nth(2).wait_for()
    assert rows.nth(0).inner_text().split("\t")[1:] == ["yes", "start"]
    assert page.locator("#tpl-links tr.tpl-target").nth(0).inner_text() == "https://example.com/start?u=42"
    assert "mailto" in rows.nth(1).inner_text() and "opt_out" in rows.nth(2).inner_text()
    assert page.locator("#tpl-link-summary").inner_text() == "1 of 3 links tracked"
    frame.locator("h1").filter(has_text="Hello Ada").wait_for()
    screenshot(page, "template-editor")

    page.click("input[name=_publish]")
    page.locator("text=Published welcome").wait_for()
    template = Template.objects.get(pk="welcome")
    assert template.has_published and not template.has_draft
    connections.close_all()  # this thread's connection, so the test database can be dropped


def test_the_link_check_says_why_it_did_not_run_and_what_raw_url_means(staff_user, live_server, browser_page):
    # Found by a newcomer: "Check links" with a syntax error left an empty table and no word;
    # "Raw URL" was not explained; the mailto row had a bare "mailto" and an empty name cell.
    page = browser_page(live_server.url + "/admin/templates_app/template/add/")
    page.fill("#id_from_email", "shop@example.com")
    page.fill("#id_subject", "Hi")
    page.fill("#id_html", '<a href="https://example.com/a">A</a>\n<p>{{ name </p>')
    page.click("#tpl-check")
    problem = page.locator("#tpl-link-errors li")
    problem.filter(has_text="html, line 2").wait_for()
    assert problem.count() == 1 and problem.inner_text() == "Links not checked: fix the error at html, line 2 first."
    assert page.locator("#tpl-links tbody tr").count() == 0 and page.locator("#tpl-raw-url-note").is_hidden()
    problem.click()  # goes to the line
    assert page.evaluate("() => document.activeElement.id") == "id_html"

    page.fill("#id_html", '<a href="https://example.com/a">A</a>\n<a href="mailto:help@example.com">Help</a>')
    page.click("#tpl-check")
    page.locator("#tpl-link-summary").filter(has_text="1 of 2 links tracked").wait_for()
    assert page.locator("#tpl-link-errors").is_hidden()
    rows = page.locator("#tpl-links tbody tr.tpl-link")
    assert rows.nth(0).inner_text().split("\t")[1:] == ["yes", "Raw URL"]
    note = page.locator("#tpl-raw-url-note")
    assert note.is_visible() and "data-msys-linkname" in note.inner_text()
    mailto = rows.nth(1).locator("td")
    assert mailto.nth(1).inner_text().split("\n") == ["no: mailto: links are never tracked", "API reason: mailto"]
    assert mailto.nth(2).inner_text() == "—"
    screenshot(page, "template-editor-link-check-raw-url")

    page.fill("#id_html", '<a href="https://example.com/a" data-msys-linkname="a">A</a>')
    page.click("#tpl-check")
    page.locator("#tpl-link-summary").filter(has_text="1 of 1 links tracked").wait_for()
    assert note.is_hidden()  # every tracked link is named: nothing to explain


def test_typing_fast_sends_one_render_at_a_time_and_a_newer_one_cancels_the_older(
    staff_user, live_server, browser_page
):
    """A template that takes seconds to check must not pile up renders while someone types:
    keystrokes closer than the pause send nothing, and a render still on its way when the next
    one is due is cancelled (AbortController), so the page has at most one in flight."""
    page = browser_page(live_server.url + "/admin/templates_app/template/add/")
    page.locator("#tpl-status").filter(has_text="Fill in From email").wait_for()  # the render on load
    sent, failed, held = [], [], []
    page.on("request", lambda r: sent.append(r) if "editor-render" in r.url else None)
    page.on("requestfailed", lambda r: failed.append(r) if "editor-render" in r.url else None)
    page.route("**/editor-render/", lambda route: held.append(route))  # answered when we say

    page.locator("#id_html").press_sequentially('<a href="https://example.com/pricing">Pricing</a>', delay=40)
    page.wait_for_timeout(900)
    assert len(sent) == 1 and not failed  # one render for a burst of 50 keystrokes

    page.locator("#id_html").press_sequentially("<p>more</p>", delay=40)
    page.wait_for_timeout(900)
    assert len(sent) == 2
    assert failed == [sent[0]]  # the older one was cancelled when the newer one left
    assert page.evaluate("() => document.getElementById('tpl-status').textContent") == "Rendering…"

    held[-1].continue_()
    page.locator("#tpl-status").filter(has_text="Fill in From email").wait_for()  # no from/subject yet
    assert len(sent) == 2
