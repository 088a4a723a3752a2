from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from analytics.figures import percent
from analytics.ingest import event_row, events_insert
from analytics.report import CHART_SERIES, DELIVERABILITY, ENGAGEMENT, REPORT_METRICS
from mailcore.ids import TEST_SEND_CAMPAIGN
from tests.analytics import data
from tests.browser import needs_chromium, screenshot
from tests.console.helpers import story
from tracking.services import Client, engagement_events
from tracking.signing import tracking_signer

WINDOW = {"from": "2024-03-01", "to": "2024-03-05"}
FIGURES = ("count_targeted", "count_accepted", "count_unique_confirmed_opened", "count_unique_clicked", "count_clicked")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-for-tests", is_staff=True)


def _api_totals(api, metrics=FIGURES, **extra):
    params = {"from": "2024-03-01T00:00", "to": "2024-03-06T00:00", "metrics": ",".join(metrics), **extra}
    return api.get("/api/v1/metrics/deliverability", params).json()["results"][0]


def _chart(html: str) -> dict:
    return json.loads(re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S).group(1))


def test_report_needs_a_staff_login(client, db):
    response = client.get("/report/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_report_shows_every_figure_as_the_metrics_api_computes_it(client, api, staff):
    events = data.generate()
    assert {"generation_failure", "bounce", "delay", "policy_rejection"} <= {e["type"] for e in events}
    data.land(events)
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    totals = _api_totals(api, REPORT_METRICS)
    assert totals["count_generation_failed"] and totals["count_hard_bounce"] and totals["count_block_bounce"]
    for name in REPORT_METRICS:
        assert f'id="{name}">{totals[name]}<' in html, name
    for metric, _label, base in (*DELIVERABILITY, *ENGAGEMENT):
        if base:
            assert f'id="rate_{metric}">{percent(totals[metric], totals[base])} of ' in html, metric
    filtered = client.get("/report/", {**WINDOW, "campaign": "welcome"}).content.decode()
    assert f'id="count_clicked">{_api_totals(api, campaigns="welcome")["count_clicked"]}<' in filtered


def _land_rows(events: list[dict]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        events_insert(cursor, [event_row(event) for event in events], returning=False)


def test_one_generation_failure_in_3009_is_shown_with_its_rate(client, api, staff):
    at = data.START + timedelta(hours=3)
    events = []
    for number in range(3009):
        msg = {"message_id": f"{number:020x}", "transmission_id": "77", "rcpt_to": f"u{number}@example.org"}
        kinds = ("generation_failure",) if number == 0 else ("injection", "delivery")
        events += [{"event_id": f"{kind}-{number}", "type": kind, "timestamp": at, **msg} for kind in kinds]
    _land_rows(events)
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    assert 'id="count_targeted">3009<' in html and 'id="count_accepted">3008<' in html
    assert 'id="count_generation_failed">1<' in html
    assert 'id="rate_count_generation_failed">0.03 % of targeted<' in html
    assert 'id="rate_count_accepted">99.97 % of targeted<' in html
    totals = _api_totals(api, REPORT_METRICS)
    assert (totals["count_targeted"], totals["count_generation_failed"]) == (3009, 1)


def test_percentages_never_round_a_part_away():
    assert (percent(3008, 3009), percent(1, 3009), percent(1, 2), percent(0, 9)) == (
        "99.97 %",
        "0.03 %",
        "50.0 %",
        "0.0 %",
    )
    assert (percent(1, 10**7), percent(10**7 - 1, 10**7), percent(5, 0)) == ("< 0.001 %", "> 99.999 %", "–")


def test_the_links_note_says_positions_count_per_part(client, staff):
    """Found by a newcomer: a click on the text part's pricing link shared the html row. The
    events carry no part, so the page says what a position counts and that the parts share rows."""
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    note = " ".join(
        re.sub(r"<[^>]+>", "", re.search(r'<p class="r" id="links-note">(.*?)</p>', html, re.S).group(1)).split()
    )
    assert "its place among the tracked links of its part, from 1" in note
    assert "The html and the text part each count from 1" in note and "counted in the same row" in note
    assert "the link check shows" in note


def test_a_7_day_window_charts_every_day_zeros_included(client, staff):
    at = datetime(2024, 3, 7, 10, tzinfo=UTC)
    msg = {"message_id": "a" * 20, "transmission_id": "1", "rcpt_to": "a@example.org"}
    _land_rows(
        [{"event_id": f"e{i}", "type": t, "timestamp": at, **msg} for i, t in enumerate(("injection", "delivery"))]
    )
    client.force_login(staff)
    chart = _chart(client.get("/report/", {"from": "2024-03-01", "to": "2024-03-07"}).content.decode())
    days = [datetime.fromtimestamp(x, UTC).date().isoformat() for x in chart["x"]]
    assert days == [f"2024-03-0{d}" for d in range(1, 8)] and chart["precision"] == "day"
    delivered = next(s for s in chart["series"] if s["label"] == "Accepted (delivered)")
    assert delivered["values"] == [0, 0, 0, 0, 0, 0, 1]
    assert [s["label"] for s in chart["series"]] == [label for _, label, _ in CHART_SERIES]
    assert "count_" not in "".join(s["label"] for s in chart["series"])
    hourly = _chart(client.get("/report/", {"from": "2024-03-07", "to": "2024-03-07"}).content.decode())
    assert hourly["precision"] == "hour" and len(hourly["x"]) == 24


def _clicks(tokens: list[str], at: datetime) -> list[dict]:
    """The click events a hit on each token records, as the tracking view makes them."""
    signer = tracking_signer()
    client = Client(ip_address="192.0.2.1", user_agent="UA", accept_language="")
    out = []
    for number, token in enumerate(tokens):
        decoded = signer.decode(token, now=int(at.timestamp()), max_age=10**8)
        for event in engagement_events(decoded, client):
            out.append({**event, "event_id": f"c{number}-{event['type']}", "timestamp": at})
    return out


def _message_tokens(number: int, at: datetime):
    return tracking_signer().for_message(
        message_id=f"{number:020x}", transmission_id="9", rcpt_to=f"r{number}@example.org", issued_at=int(at.timestamp()),
        campaign_id="links", template_id="tpl",
    )  # fmt: skip


def test_links_are_grouped_by_template_link_and_position_and_named_as_their_events(client, staff):
    # Found by a newcomer: an unnamed link was "Raw URL" in the link check and timeline, "Link 1" here.
    at = data.START + timedelta(hours=5)
    tokens = []
    for number in range(300):
        message = _message_tokens(number, at)
        tokens.append(message.click(f"https://x.example/account?id={number}", "Raw URL", position=2,
                                    written="https://x.example/account?id={{id}}"))  # fmt: skip
        if number < 10:  # the same URL written twice: the header button and the footer link
            tokens.append(
                message.click("https://x.example/shop", "Raw URL", position=1, written="https://x.example/shop")
            )
            tokens.append(
                message.click("https://x.example/shop", "Raw URL", position=3, written="https://x.example/shop")
            )
        if number < 4:  # links sent before positions existed: one row per clicked URL
            tokens.append(message.click(f"https://x.example/old?id={number % 2}", "Old"))
    _land_rows(_clicks(tokens, at))
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    rows = re.findall(
        r'<tr><td>([^<]*)</td><td><code>([^<]*)</code></td><td class="pos">([^<]*)</td>'
        r'<td class="n">(\d+)</td><td class="n">(\d+)</td></tr>', html
    )  # fmt: skip
    assert sorted(rows) == sorted([
        ("Raw URL", "https://x.example/account?id={{id}}", "2", "300", "300"),
        ("Raw URL", "https://x.example/shop", "1", "10", "10"),
        ("Raw URL", "https://x.example/shop", "3", "10", "10"),
        ("Old", "https://x.example/old?id=0", "–", "2", "2"),
        ("Old", "https://x.example/old?id=1", "–", "2", "2"),
    ])  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"from": "nonsense"},
        {"from": "2024-13-45"},
        {"to": "2024-02-30"},
        {"from": "2024-03-05", "to": "2024-03-01"},
        {"from": "2024-03-01T00:00"},
        {"timezone": "Nowhere/Zone"},
        {"timezone": "../../etc/passwd"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"from": "2024-03-01", "to": "9999-12-31"},
        {"from": "0001-01-02", "to": "9999-12-30"},
        {"from": "２０２４-03-01"},
    ],
)
def test_a_query_the_report_cannot_read_is_the_page_with_the_reason_400(client, staff, params):
    client.force_login(staff)
    response = client.get("/report/", params)
    assert response.status_code == 400
    assert 'id="error"' in response.content.decode()


def test_long_filters_are_cut_not_a_crash(client, staff):
    client.force_login(staff)
    response = client.get("/report/", {**WINDOW, "campaign": "c" * 100_000, "template": "\u202e" * 500})
    assert response.status_code == 200


@pytest.fixture
def landed_totals(transactional_db, api):
    """The generated data set landed, and the metrics API's figures for the window (made
    before the browser starts: Playwright's loop makes the test body an async context)."""
    data.land(data.generate())
    return _api_totals(api, REPORT_METRICS)


@pytest.mark.slow
@needs_chromium
def test_report_in_a_real_browser_draws_the_chart_and_matches_the_metrics_api(
    live_server, staff_user, landed_totals, browser_page
):
    expected = landed_totals
    page = browser_page(f"{live_server.url}/report/?from={WINDOW['from']}&to={WINDOW['to']}")
    page.wait_for_selector("#chart canvas")
    shown = {name: int(page.inner_text(f"#{name}")) for name in REPORT_METRICS}
    assert shown == {name: expected[name] for name in REPORT_METRICS}
    assert page.locator("#links tbody tr").count() == len(data.LINKS)
    for path in ("analytics/vendor/uplot/uPlot.iife.min.js", "analytics/vendor/uplot/uPlot.min.css"):
        assert page.request.get(f"{live_server.url}/static/{path}").status == 200

    chart = page.evaluate("() => ({axes: engageReportChart.axes, ticks: engageReportChart.ticks()})")
    assert chart["axes"] == ["Date (UTC)", "Messages / events per day"]
    assert chart["ticks"][:5] == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"]
    legend = page.locator("#chart .u-legend .u-series .u-label").all_inner_texts()
    assert legend == ["Day", *(label for _, label, _ in CHART_SERIES)]
    # the legend names a metric as its card does (found by a newcomer: "Unique opens" beside
    # a card saying "Unique confirmed opens" for the same count_unique_confirmed_opened)
    cards = dict(zip(page.locator(".card .v").evaluate_all("els => els.map(e => e.id)"),
                     page.locator(".card .label").all_inner_texts(), strict=True))  # fmt: skip
    assert [cards[metric] for metric, _, _ in CHART_SERIES] == legend[1:]
    assert "Unique confirmed opens" in legend

    # Before any hover the legend shows the latest day's values, not an empty "Day: –" row.
    data_ = json.loads(page.inner_text("#chart-data"))
    values = page.locator("#chart .u-legend .u-series .u-value").all_inner_texts()
    assert values[0] == "2024-03-05"
    assert values[1:] == [f"{series['values'][-1]:,}" for series in data_["series"]]

    # Hover the third day: the legend shows its date and each series' value for it.
    page.locator("#chart").scroll_into_view_if_needed()
    box = page.locator("#chart .u-over").bounding_box()
    x = page.evaluate("() => window.engageReportChart.x(2)")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2, steps=4)
    page.wait_for_function("() => document.querySelector('#chart .u-legend .u-series .u-value').textContent !== ''")
    values = page.locator("#chart .u-legend .u-series .u-value").all_inner_texts()
    assert values[0] == "2024-03-03"
    assert values[1:] == [f"{series['values'][2]:,}" for series in data_["series"]]
    assert any(series["values"][2] for series in data_["series"])
    screenshot(page, "report")
    page.mouse.move(box["x"] + x, box["y"] + box["height"] + 60, steps=4)  # off the chart
    page.wait_for_function(
        "() => document.querySelector('#chart .u-legend .u-series .u-value').textContent === '2024-03-05'"
    )


@pytest.fixture
def equal_opens_and_clicks(transactional_db):
    at = data.START + timedelta(hours=5)
    data.land([
        *story("m-eq1", "a@example.com", at, kinds=("injection", "delivery", "open", "click")),
        *story("m-eq2", "b@example.com", at + timedelta(days=2), kinds=("injection", "delivery", "open", "click")),
    ])  # fmt: skip


@pytest.mark.slow
@needs_chromium
def test_equal_unique_opens_and_unique_clicks_both_show_in_the_chart(
    live_server, staff_user, equal_opens_and_clicks, browser_page
):
    """Found by a newcomer: with as many unique opens as unique clicks each day, the clicks
    line covered the opens line. The opens line is drawn wider and under the dashed clicks
    line, so its colour still shows along the whole chart."""
    page = browser_page(f"{live_server.url}/report/?from={WINDOW['from']}&to={WINDOW['to']}")
    page.wait_for_selector("#chart canvas")
    chart = json.loads(page.inner_text("#chart-data"))
    by_label = {series["label"]: series for series in chart["series"]}
    assert by_label["Unique confirmed opens"]["values"] == by_label["Unique clicks"]["values"] == [1, 0, 1, 0, 0]

    def pixels(color: str) -> int:
        """Canvas pixels of exactly this colour (the lines are drawn opaque)."""
        rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
        return page.evaluate(
            """([r, g, b]) => { const c = document.querySelector('#chart canvas');
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 0; i < d.length; i += 4) if (d[i] === r && d[i+1] === g && d[i+2] === b) n++;
                 return n; }""",
            rgb,
        )

    opens, clicks = pixels(by_label["Unique confirmed opens"]["color"]), pixels(by_label["Unique clicks"]["color"])
    assert opens > 500 and clicks > 100, (opens, clicks)
    screenshot(page, "report-equal-opens-and-clicks")


def test_the_template_filter_suggests_smtp_injections_by_the_id_their_events_carry(client, staff):
    at = datetime(2024, 3, 2, 8, tzinfo=UTC)
    data.land([
        *story("m-smtp", "sam@example.com", at, kinds=("injection", "delivery"), template_id="smtp_4243",
               transmission_id="4243", recv_method="esmtp"),
        *story("m-rest", "rae@example.com", at, kinds=("injection", "delivery"), template_id="inline"),
    ])  # fmt: skip
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    suggested = re.search(r'<datalist id="template-list">(.*?)</datalist>', html, re.S).group(1)
    assert '<option value="smtp_4243" label="smtp_4243 (SMTP injection, transmission 4243)">' in suggested
    assert '<option value="inline" label="inline (inline content)">' in suggested


def test_template_test_sends_in_the_window_are_said_and_still_counted_as_the_api_counts(client, api, staff):
    # Found by a newcomer: test sends from the template editor were in the figures, unsaid.
    at = datetime(2024, 3, 2, 8, tzinfo=UTC)
    data.land([
        *story("m-real", "rae@example.com", at, kinds=("injection", "delivery"), campaign_id="spring"),
        *story("m-test1", "me@example.com", at, kinds=("injection", "delivery"), campaign_id=TEST_SEND_CAMPAIGN),
        *story("m-test2", "me@example.com", at, kinds=("injection", "delivery"), campaign_id=TEST_SEND_CAMPAIGN),
    ])  # fmt: skip
    client.force_login(staff)
    html = client.get("/report/", WINDOW).content.decode()
    assert f'id="count_targeted">{_api_totals(api)["count_targeted"]}<' in html and 'id="count_targeted">3<' in html
    note = re.search(r'<p class="r" id="test-sends-note">(.*?)</p>', html, re.S)[1]
    assert "include 2 messages of template test sends (campaign <code>admin-test-send</code>" in " ".join(note.split())
    assert "test-sends-note" not in client.get("/report/", {**WINDOW, "campaign": "spring"}).content.decode()
    assert "test-sends-note" not in client.get("/report/", {**WINDOW, "from": "2024-03-03"}).content.decode()


def test_a_campaign_filter_matching_no_campaign_says_so_and_the_suggestions_stay_complete(client, staff):
    # Found by a newcomer: "spring" (for spring-sale) showed all zeros without a word.
    data.land(data.generate())
    client.force_login(staff)
    html = client.get("/report/", {**WINDOW, "campaign": "spring", "template": "tpl-a"}).content.decode()
    [said] = re.findall(r'<p class="error filter-unmatched" role="status">(.*?)</p>', html)
    assert said == (
        "No campaign &#x27;spring&#x27; has data in this period: the campaign filter takes exact ids. "
        "Did you mean spring-sale?"
    )
    assert 'id="count_targeted">0<' in html  # the API's answer, no longer silent
    assert "Campaign and template take exact ids" in html and 'placeholder="exact id"' in html
    suggested = re.search(r'<datalist id="campaign-list">(.*?)</datalist>', html, re.S)[1]
    assert re.findall(r'value="([^"]+)"', suggested) == sorted(data.CAMPAIGNS)  # not only the filtered one
    exact = client.get("/report/", {**WINDOW, "campaign": "spring-sale,newsletter"}).content.decode()
    assert "filter-unmatched" not in exact
    nothing_near = client.get("/report/", {**WINDOW, "template": "zzz"}).content.decode()
    assert "No template &#x27;zzz&#x27; has data in this period" in nothing_near


def test_suggestions_stop_at_their_cap_and_a_filter_value_past_it_still_counts_as_present(client, staff, monkeypatch):
    """An attacker's finding: 100,000 campaigns with data made the page 7.3 MB (every id
    suggested). The lists stop at MAX_SUGGESTIONS; a value past the cap is still found."""
    from analytics import report

    data.land(data.generate())
    monkeypatch.setattr(report, "MAX_SUGGESTIONS", 1)
    client.force_login(staff)
    last = sorted(data.CAMPAIGNS)[-1]
    html = client.get("/report/", {**WINDOW, "campaign": f"{last},nope,nope"}).content.decode()
    suggested = re.search(r'<datalist id="campaign-list">(.*?)</datalist>', html, re.S)[1]
    assert re.findall(r'value="([^"]+)"', suggested) == sorted(data.CAMPAIGNS)[:1]
    [said] = re.findall(r'<p class="error filter-unmatched" role="status">(.*?)</p>', html)
    assert said.startswith("No campaign &#x27;nope&#x27; has data")  # once, and the past-the-cap id is not named
