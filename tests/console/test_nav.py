"""The console's frame (engage/templates/engage/base.html): the log-out form in the nav, the
favicon (and ``/favicon.ico``), and the nav and tables at a phone's width."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders

from tests.browser import needs_chromium, screenshot

ICON = "/static/engage/favicon.svg"


def test_the_nav_has_a_log_out_form_that_posts_to_the_admin_s_logout_with_csrf(staff):
    html = staff.get("/").content.decode()
    form = html.split('class="logout">', 1)[1].split("</form>", 1)[0]
    assert 'action="/admin/logout/"' in html.split('class="logout">', 1)[0][-80:]
    assert 'name="csrfmiddlewaretoken"' in form and "Log out boss" in form
    assert staff.post("/admin/logout/").status_code == 302
    assert staff.get("/").status_code == 302  # signed out: sent to sign in


def test_logging_out_lands_on_the_sign_in_page_which_leads_back_to_the_console(staff):
    response = staff.post("/admin/logout/", follow=True)
    assert response.redirect_chain == [("/admin/login/?next=/", 302)]
    html = response.content.decode()
    assert 'id="id_username"' in html and 'name="next" value="/"' in html
    assert "quality time" not in html
    assert "Signed out boss. Sign in again below." in html
    assert "Signed out" not in staff.get("/admin/login/?next=/").content.decode()  # said once


def test_admin_pages_have_the_console_s_main_links(staff):
    html = staff.get("/admin/templates_app/template/").content.decode()
    nav = html.split('<nav class="engage-console"', 1)[1].split("</nav>", 1)[0]
    for href, label in [("/", "Overview"), ("/report/", "Report"), ("/messages/", "Messages"),
                        ("/transmissions/", "Transmissions"), ("/transmissions/new/", "Send"),
                        ("/report/sink/", "Sink")]:  # fmt: skip
        assert f'<a href="{href}">{label}</a>' in nav


def test_console_and_admin_pages_name_the_icon_and_favicon_ico_leads_to_it(staff):
    assert finders.find("engage/favicon.svg")
    for page in ("/", "/messages/", "/admin/", "/admin/templates_app/template/"):
        assert staff.get(page).content.decode().count(f'<link rel="icon" href="{ICON}"') == 1, page  # once
    response = staff.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == ICON


@pytest.mark.slow
@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_no_request_fails_and_log_out_signs_out(staff_user, live_server, browser_page):
    failed: list[str] = []
    page = browser_page(live_server.url + "/")
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => fetch('/favicon.ico').then(r => r.ok)")
    assert failed == []
    screenshot(page, "console-nav")
    page.click("form.logout button")
    page.wait_for_load_state()
    page.goto(live_server.url + "/messages/")
    assert page.locator("#id_username").count() == 1


def test_the_api_docs_page_leads_back_to_the_console(client):
    html = client.get("/api/v1/docs").content.decode()
    nav = html.split('<nav class="engage-back"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/">← Engage console</a>' in nav
    assert html.index('class="engage-back"') < html.index('id="swagger-ui"')  # above the docs, once
    assert html.count('id="swagger-ui"') == 1 and html.count('class="engage-back"') == 1
