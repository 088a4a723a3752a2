"""The front door (issue 15, Deliver 1): ``/`` signed in shows the last 24 hours' figures as
the metrics API counts them, the newest transmissions and every console page; the admin
is Engage's and links back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.figures import DELIVERABILITY, ENGAGEMENT, figures
from console.pages import PAGES
from console.selectors import TEST_SEND_CAMPAIGN
from console.views.overview import FIGURES, last_day_window, window_title
from recipient_lists.models import RecipientList
from templates_app.services import template_create
from tests.analytics import data
from tests.browser import STAFF, needs_chromium, screenshot
from tests.console.helpers import CONTENT, recent_events, shown_window, story
from transmissions.models import Message, Transmission, TransmissionState

ROOT = Path(__file__).resolve().parents[2]
METRICS = [metric for metric, _label, _of in FIGURES]


def test_the_front_door_asks_for_a_sign_in_on_a_page_named_engage(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    login = client.get(response["Location"]).content.decode()
    assert "<title>Log in | Engage</title>" in login and ">Engage</a>" in login


@pytest.mark.parametrize("next_url", ["", "https://elsewhere.example/", "//elsewhere.example/"])
def test_signing_in_without_a_usable_next_page_lands_on_the_overview(client, staff_user, next_url):
    # Django's fallback is LOGIN_REDIRECT_URL, /accounts/profile/ by default: a 404 here.
    response = client.post("/admin/login/", {"username": STAFF[0], "password": STAFF[1], "next": next_url})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 11, 30, 19, 39, 13, tzinfo=UTC), datetime(2026, 11, 30, 19, tzinfo=UTC),
     datetime(2026, 11, 30, 19, 59, 59, 999999, tzinfo=UTC), datetime(2026, 12, 1, 0, 0, 1, tzinfo=timezone.get_fixed_timezone(90))],
)  # fmt: skip
def test_the_window_is_24_whole_utc_hours_ending_with_the_current_one(now):
    start, end = last_day_window(now)
    assert end - start == timedelta(hours=24)  # it said 24 h and counted 25 (found by a newcomer)
    assert start <= now < end and end - now <= timedelta(hours=1)
    assert start.tzinfo == UTC and (start.minute, start.second, start.microsecond) == (0, 0, 0)


def test_the_overview_says_the_window_it_counts(client, staff_user):
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    start, end = (datetime.fromisoformat(value) for value in shown_window(html))
    assert end - start == timedelta(hours=24) and f'<h2 id="window-title">Since {start:%H:%M} UTC ' in html


def test_the_overview_shows_the_metrics_api_figures_of_the_last_day(client, api, staff_user):
    now = timezone.now()
    events = recent_events(now)
    data.land(events)
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    start, end = shown_window(html)
    totals = api.get("/api/v1/metrics/deliverability", {"from": start, "to": end, "metrics": ",".join(METRICS)}).json()[
        "results"
    ][0]
    for metric in METRICS:
        assert f'id="{metric}">{totals[metric]}<' in html, metric
    # the window is the last day, and it cuts the data set (so the figures could have been wrong)
    window = [datetime.fromisoformat(value).replace(tzinfo=UTC) for value in (start, end)]
    assert window[1] - window[0] == timedelta(hours=24) and window[0] <= now < window[1]
    expected = data.brute(events, start=window[0], end=window[1])[None]
    everything = data.brute(events, start=now - timedelta(days=30), end=now + timedelta(days=30))[None]
    for metric in ("count_targeted", "count_accepted", "count_unique_clicked", "count_generation_failed"):
        assert 0 < expected[metric] == totals[metric] < everything[metric], metric
    # the rates say what they are of
    assert re.search(r'id="count_accepted">\d+</div><div class="r">\d+\.\d+ % of targeted</div>', html)


def test_the_overview_says_how_many_of_its_figures_are_template_test_sends(client, api, staff_user):
    # Found by a newcomer: test sends from the template editor were counted without a word.
    client.force_login(staff_user)
    assert 'id="test-sends-note"' not in client.get("/").content.decode()
    now = timezone.now()
    data.land([
        *story("m-real", "rae@example.com", now - timedelta(minutes=5), kinds=("injection", "delivery")),
        *story("m-test", "me@example.com", now - timedelta(minutes=5), kinds=("injection", "delivery"),
               campaign_id=TEST_SEND_CAMPAIGN),
    ])  # fmt: skip
    html = client.get("/").content.decode()
    start, end = shown_window(html)
    total = api.get("/api/v1/metrics/deliverability", {"from": start, "to": end, "metrics": "count_targeted"})
    assert f'id="count_targeted">{total.json()["results"][0]["count_targeted"]}<' in html  # unchanged: 2
    assert 'id="count_targeted">2<' in html
    note = " ".join(html.split('id="test-sends-note">', 1)[1].split("</p>", 1)[0].split())
    assert note.startswith("They include 1 message of template test sends (campaign <code>admin-test-send</code>")


def test_the_overview_names_and_rates_each_figure_as_the_report_does():
    # Found by a newcomer: 1 unique open of 3004 read "0.0% of delivered" here, "0.03 %" there.
    report = {metric: (label, base) for metric, label, base in (*DELIVERABILITY, *ENGAGEMENT)}
    assert all(report[metric] == (label, base) for metric, label, base in FIGURES)
    totals = dict.fromkeys(METRICS, 3004) | {"count_unique_confirmed_opened": 1, "count_unique_clicked": 0}
    shown = {f["metric"]: f"{f['rate']} of {f['of']}" for f in figures(FIGURES, totals)}
    assert shown["count_unique_confirmed_opened"] == "0.03 % of delivered"
    assert shown["count_unique_clicked"] == "0.0 % of delivered"
    assert shown["count_accepted"] == "100.0 % of targeted"


def test_the_overview_lists_the_newest_transmissions_in_two_queries(client, staff_user):
    made = [Transmission.objects.create(campaign_id=f"camp-{n}", num_rcpts=n) for n in range(12)]
    generating = made[-1]
    Transmission.objects.filter(pk=generating.pk).update(state=TransmissionState.GENERATING, num_generated=0)
    for n, state in enumerate(["delivered", "bounced", "generation_failed", "queued"]):
        Message.objects.create(transmission=generating, chunk=0, message_id=f"{n:020x}", email=f"a{n}@example.com",
                               recipient={}, state=state)  # fmt: skip
    client.force_login(staff_user)
    client.get("/")  # the session and user are loaded once
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/").content.decode()
    transmission_queries = [q["sql"] for q in queries.captured_queries if "transmissions_" in q["sql"]]
    assert len(transmission_queries) == 2, transmission_queries
    rows = re.findall(r'<tr><td><a href="/transmissions/(\d+)/">', html)
    assert rows == [str(t.id) for t in reversed(made)][:10]
    row = html[html.index(f'/transmissions/{generating.id}/"') :].split("</tr>")[0]
    # while generating, counted from its messages (as GET /api/v1/transmissions/<id> does)
    assert '<td class="n">11</td><td class="n">2</td><td class="n">1</td>' in row and ">Generating<" in row
    assert "camp-0<" not in html and "camp-2<" in html


def test_with_nothing_sent_the_overview_says_how_to_start(client, staff_user):
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    assert 'id="count_targeted">0<' in html and "No transmission yet" in html
    start = html.split('<div id="start"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r'href="([^"]+)"', start) == [
        "/admin/templates_app/template/add/",
        "/admin/recipient_lists/recipientlist/add/",
        "/transmissions/new/",
        "/tutorial/",
    ]
    for url in re.findall(r'href="([^"]+)"', start):  # every step opens
        assert client.get(url).status_code == 200, url
    tutorial = client.get("/tutorial/").content.decode()
    assert "Tutorial with curl" in tutorial and "-d &#x27;{&quot;published&quot;: true}&#x27;" in tutorial
    assert "$API/transmissions" in tutorial and "```" not in tutorial and "## Sending through SMTP" not in tutorial


def test_once_something_was_sent_the_overview_no_longer_shows_how_to_start(client, staff_user):
    Transmission.objects.create(campaign_id="first", num_rcpts=1)
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    assert 'id="start"' not in html and "first" in html


def test_after_only_a_test_send_the_overview_still_shows_how_to_start_with_the_list_step(client, staff_user):
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})
    Transmission.objects.create(campaign_id=TEST_SEND_CAMPAIGN, template_id="promo", num_rcpts=1)
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    start = html.split('<div id="start"', 1)[1].split("</div>", 1)[0]
    assert "Only test sends so far." in start
    assert "— done: a published template exists" in start and "done: a list exists" not in start
    assert '<li><a href="/admin/recipient_lists/recipientlist/add/">create a recipient list</a>' in start
    RecipientList.objects.create(id="friends", name="Friends")
    start = client.get("/").content.decode().split('<div id="start"', 1)[1].split("</div>", 1)[0]
    assert "— done: a list exists" in start
    Transmission.objects.create(campaign_id="spring", template_id="promo", list_id="friends", num_rcpts=1)
    assert 'id="start"' not in client.get("/").content.decode()


def test_the_tutorial_names_the_address_it_was_served_from_not_the_readme_default(client, staff_user, settings):
    # Found by a newcomer: on ENGAGE_PORT=8130 the commands said API=http://127.0.0.1:8000/api/v1.
    settings.ALLOWED_HOSTS = ["engage.example"]
    settings.ENGAGE_TRACKING_BASE_URL = "https://track.example"
    settings.ENGAGE_SINK_DIR = settings.BASE_DIR / "elsewhere" / "sink"
    client.force_login(staff_user)
    html = client.get("/tutorial/", headers={"host": "engage.example:8130"}, secure=True).content.decode()
    assert "API=https://engage.example:8130/api/v1" in html
    assert "open https://engage.example:8130/report/sink/ (sign in" in html
    assert "the engagement report: https://engage.example:8130/report/" in html
    assert "ls elsewhere/sink/" in html and "https://track.example" in html
    assert "127.0.0.1:8000" not in html and "var/sink" not in html
    # the host is the one ALLOWED_HOSTS let through: any other is refused, not echoed
    assert client.get("/tutorial/", headers={"host": "evil.example:8130"}).status_code == 400


def test_the_tutorial_is_staff_only(client, db):
    response = client.get("/tutorial/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_overview_and_the_admin_index_link_every_page_the_navigation_names(client, staff_user):
    nav = (ROOT / "engage/templates/engage/base.html").read_text().split("<header>")[1].split("</header>")[0]
    named = set(re.findall(r'href="([^"]+)"', nav)) - {"/"}
    assert named == {page.url for page in PAGES}
    client.force_login(staff_user)
    overview = client.get("/").content.decode()
    admin_index = client.get("/admin/").content.decode()
    for page in PAGES:
        assert f'<a href="{page.url}">{page.title}</a>' in overview
        assert f'<a href="{page.url}">{page.title}</a>' in admin_index
    # the admin is Engage's, and its "View site" is the overview
    assert '<a href="/">View site</a>' in admin_index and "<title>Administration | Engage</title>" in admin_index


@pytest.fixture
def recent_data(transactional_db, make_key, staff_user) -> str:
    """A generated data set around the last day and one transmission; returns an API key.
    Made before ``browser_page`` starts (Playwright's event loop then runs in this thread, where
    Django refuses database calls): the test reads the API over HTTP."""
    data.land(recent_events(timezone.now()))
    Transmission.objects.create(campaign_id="browser-campaign", num_rcpts=3)
    return make_key()


@pytest.mark.slow
@needs_chromium
def test_the_overview_in_a_real_browser_matches_the_metrics_api(live_server, recent_data, browser_page):
    page = browser_page(live_server.url + "/")  # the sign-in page first, then back here
    page.wait_for_selector("#count_targeted")
    assert page.url == live_server.url + "/"
    window = {"from": page.get_attribute("#window", "data-from"), "to": page.get_attribute("#window", "data-to")}
    answer = requests.get(f"{live_server.url}/api/v1/metrics/deliverability", {**window, "metrics": ",".join(METRICS)},
                          headers={"Authorization": recent_data}, timeout=30)  # fmt: skip
    totals = answer.json()["results"][0]
    shown = {metric: int(page.inner_text(f"#{metric}")) for metric in METRICS}
    assert shown == {metric: totals[metric] for metric in METRICS} and shown["count_targeted"] > 0
    assert "browser-campaign" in page.inner_text("#transmissions")
    screenshot(page, "overview")
    page.click("header >> text=Report")  # the navigation leads on
    page.wait_for_load_state()
    assert page.url.startswith(live_server.url + "/report/") and "Not found" not in page.title()
    page.goto(live_server.url + "/no-such-page")  # and back from a wrong turn
    assert page.title() == "Not found · Engage"
    page.click("#home")
    page.wait_for_selector("#count_targeted")
    assert page.url == live_server.url + "/"


@pytest.mark.parametrize(
    ("now", "said"),
    [
        (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "Since 06:00 UTC yesterday"),
        (datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "Since 06:00 UTC yesterday"),
        (datetime(2026, 12, 1, 23, 10, tzinfo=UTC), "Since 00:00 UTC today"),
        (datetime(2026, 12, 1, 0, 10, tzinfo=UTC), "Since 01:00 UTC yesterday"),
    ],
)
def test_the_window_s_title_says_the_hour_it_starts_not_the_last_24_hours(now, said):
    start, _end = last_day_window(now)
    assert window_title(start, now) == said


def test_the_overview_heading_names_the_first_hour_counted(client, staff_user):
    client.force_login(staff_user)
    html = client.get("/").content.decode()
    start = datetime.fromisoformat(shown_window(html)[0]).replace(tzinfo=UTC)
    assert re.search(rf'<h2 id="window-title">Since {start:%H:%M} UTC (yesterday|today), in hourly buckets</h2>', html)
    assert "The last 24 hours" not in html and "Not a rolling 24 hours" in html
