from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.analytics import data

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = {"from": "2024-03-01", "to": "2024-03-05"}
FIGURES = ("count_targeted", "count_accepted", "count_unique_confirmed_opened", "count_unique_clicked", "count_clicked")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-for-tests", is_staff=True)


def _api_totals(api, **extra):
    params = {"from": "2024-03-01T00:00", "to": "2024-03-06T00:00", "metrics": ",".join(FIGURES), **extra}
    return api.get("/api/v1/metrics/deliverability", params).json()["results"][0]


def test_report_needs_a_staff_login(client, db):
    response = client.get("/report/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_report_shows_the_metrics_api_figures_and_links(client, api, staff):
    events = data.generate()
    data.land(events)
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    totals = _api_totals(api)
    for name in FIGURES:
        assert f'id="{name}">{totals[name]}<' in html
    assert "<svg" in html and "polyline" in html
    links = data.brute_links(events, start=data.START, end=data.START + timedelta(days=5))
    for (name, url), (clicks, unique) in links.items():
        row = f'<td>{name}</td><td><a href="{url}" rel="noopener noreferrer">{url}</a></td>'
        assert f'{row}<td class="n">{clicks}</td><td class="n">{unique}</td>' in html
    filtered = client.get("/report/", {**WINDOW, "campaign": "welcome"}).content.decode()
    assert f'id="count_clicked">{_api_totals(api, campaigns="welcome")["count_clicked"]}<' in filtered
    assert client.get("/report/", {"from": "nonsense"}).status_code == 400


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI: apt-get install -y chromium)")
def test_report_in_a_real_browser_matches_the_metrics_api(
    live_server, transactional_db, django_user_model, api, tmp_path
):
    from playwright.sync_api import sync_playwright

    django_user_model.objects.create_user("boss", password="pw-for-tests", is_staff=True)
    data.land(data.generate())
    expected = _api_totals(api)
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.goto(f"{live_server.url}/report/?from={WINDOW['from']}&to={WINDOW['to']}")
            page.fill("#id_username", "boss")
            page.fill("#id_password", "pw-for-tests")
            page.click("input[type=submit]")
            page.wait_for_selector("#count_targeted")
            shown = {name: int(page.inner_text(f"#{name}")) for name in FIGURES}
            assert shown == {name: expected[name] for name in FIGURES}
            assert page.locator("#chart polyline").count() == 2
            assert page.locator("#links tbody tr").count() == len(data.LINKS)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
