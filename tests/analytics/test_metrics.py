from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from analytics.metrics import METRICS
from tests.analytics import data
from tests.helpers import assert_error

ALL = [m for m in METRICS]
S, E = data.START, data.START + timedelta(days=6)


def _fmt(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def events(db):
    generated = data.generate()
    data.land(generated)
    return generated


def _get(api, path, **params):
    response = api.get(f"/api/v1/metrics/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _expect(totals: dict) -> dict:
    return {m: totals.get(m, 0) for m in ALL}


@pytest.mark.parametrize(
    ("start", "end"),
    [(S, E), (S + timedelta(hours=13), S + timedelta(days=1, hours=7)), (S + timedelta(days=2), E)],
)
def test_summary_equals_brute_force_for_every_metric(api, events, start, end):
    got = _get(api, "deliverability", **{"from": _fmt(start), "to": _fmt(end), "metrics": ",".join(ALL)})
    assert len(got) == 1
    assert got[0] == _expect(data.brute(events, start=start, end=end)[None])


def test_the_data_set_exercises_every_counted_metric(api, events):
    totals = data.brute(events, start=S, end=E)[None]
    zero_by_design = {"count_outofband_bounce", "count_spam_complaint"}
    assert [m for m in ALL if m not in zero_by_design and not totals.get(m)] == []
    assert totals["count_unique_confirmed_opened"] > totals["count_unique_rendered"]  # clicks without opens


@pytest.mark.parametrize(
    ("path", "key", "keyfn"),
    [
        ("deliverability/domain", "domain", lambda e: e["rcpt_to"].rpartition("@")[2]),
        ("deliverability/campaign", "campaign_id", lambda e: e["campaign_id"]),
        ("deliverability/template", "template_id", lambda e: e["template_id"]),
    ],
)
def test_group_by_equals_brute_force(api, events, path, key, keyfn):
    start, end = S + timedelta(hours=5), S + timedelta(days=2, hours=3)
    got = _get(api, path, **{"from": _fmt(start), "to": _fmt(end), "metrics": ",".join(ALL)})
    expected = data.brute(events, start=start, end=end, key=keyfn)
    assert {row[key]: {m: row[m] for m in ALL} for row in got} == {k: _expect(v) for k, v in expected.items()}
    ordered = [row["count_targeted"] for row in got]
    assert ordered == sorted(ordered, reverse=True)


def test_filters_and_limit_and_order_by(api, events):
    params = {"from": _fmt(S), "to": _fmt(E), "metrics": "count_clicked,count_unique_clicked"}
    got = _get(api, "deliverability/domain", **params, campaigns="spring-sale,welcome", templates="tpl-a")
    expected = data.brute(
        events, start=S, end=E, key=lambda e: e["rcpt_to"].rpartition("@")[2],
        campaigns={"spring-sale", "welcome"}, templates={"tpl-a"},
    )  # fmt: skip
    assert {r["domain"]: r["count_clicked"] for r in got} == {k: v["count_clicked"] for k, v in expected.items()}
    top = _get(api, "deliverability/campaign", **params, order_by="count_unique_clicked", limit="2")
    assert len(top) == 2 and top[0]["count_unique_clicked"] >= top[1]["count_unique_clicked"]
    one = _get(api, "deliverability", **params, domains="gmail.com")[0]
    assert one["count_clicked"] == data.brute(events, start=S, end=E, domains={"gmail.com"})[None]["count_clicked"]


def test_time_series_by_day_in_a_timezone_and_by_hour(api, events):
    tz = ZoneInfo("America/New_York")
    got = _get(
        api, "deliverability/time-series", **{"from": "2024-02-29T00:00", "to": "2024-03-06T00:00"},
        metrics="count_rendered,count_unique_confirmed_opened,count_clicked", precision="day", timezone=tz.key,
    )  # fmt: skip
    assert [row["ts"] for row in got][:2] == ["2024-02-29T00:00:00-05:00", "2024-03-01T00:00:00-05:00"]
    assert len(got) == 6
    start, end = S - timedelta(hours=5), S + timedelta(days=5, hours=19)
    expected = data.brute(events, start=start, end=end, key=lambda e: data.local_day(e, tz))
    for row in got:
        for metric in ("count_rendered", "count_unique_confirmed_opened", "count_clicked"):
            assert row[metric] == expected.get(row["ts"], {}).get(metric, 0), (row, metric)
    hourly = _get(
        api, "deliverability/time-series", **{"from": _fmt(S), "to": _fmt(S + timedelta(days=1))},
        metrics="count_unique_clicked", precision="hour",
    )  # fmt: skip
    assert len(hourly) == 24
    expected = data.brute(events, start=S, end=S + timedelta(days=1), key=lambda e: e["timestamp"].hour)
    assert [r["count_unique_clicked"] for r in hourly] == [
        expected.get(h, {}).get("count_unique_clicked", 0) for h in range(24)
    ]


def test_link_name_counts_unique_and_raw_clicks(api, events):
    start, end = S + timedelta(hours=20), E
    got = _get(
        api,
        "deliverability/link-name",
        **{"from": _fmt(start), "to": _fmt(end)},
        metrics="count_clicked,count_raw_clicked",
    )
    by_name: dict = {}
    for (name, _url), (clicks, unique) in data.brute_links(events, start=start, end=end).items():
        by_name.setdefault(name, [0, 0])
        by_name[name][0] += clicks
        by_name[name][1] += unique
    assert {r["link_name"]: [r["count_raw_clicked"], r["count_clicked"]] for r in got} == by_name


def test_lists_of_campaigns_domains_templates(api, events):
    window = {"from": _fmt(S), "to": _fmt(E)}
    assert _get(api, "campaigns", **window) == {"campaigns": sorted(c for c in data.CAMPAIGNS)}
    assert _get(api, "domains", **window) == {"domains": sorted(data.DOMAINS)}
    assert _get(api, "templates", **window) == {"templates": sorted(data.TEMPLATES)}


def test_index_lists_links(api, db):
    body = api.get("/api/v1/metrics/").json()
    assert body["results"] == {}
    assert {"href": "/api/v1/metrics/deliverability", "rel": "deliverability", "method": "GET"} in body["links"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"metrics": "count_clicked"}, "1401"),
        ({"from": "2024-03-01T00:00"}, "1401"),
        ({"from": "2024-03-01T00:00", "metrics": "count_nope"}, "1200"),
        ({"from": "2024-03-01T00:00", "metrics": "total_msg_volume"}, "1200"),
        ({"from": "yesterday", "metrics": "count_clicked"}, "1200"),
        ({"from": "2024-03-02T00:00", "to": "2024-03-01T00:00", "metrics": "count_clicked"}, "1200"),
        ({"from": "2024-03-01T00:00", "metrics": "count_clicked", "timezone": "Mars/Base"}, "1200"),
        ({"from": "2024-03-01T00:00", "metrics": "count_clicked", "order_by": "count_sent"}, "1200"),
        ({"from": "2024-03-01T00:00", "metrics": "count_clicked", "limit": "x"}, "1200"),
    ],
)
def test_bad_params_are_400(api, db, params, code):
    assert_error(api.get("/api/v1/metrics/deliverability", params), 400, code)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"precision": "5min"}, "precision: '5min' is not available: Engage keeps hourly rollups"),
        ({"precision": "hour", "to": "2024-05-01T00:00"}, "31 days"),
        ({"precision": "fortnight"}, "precision: must be one of hour, 12hr, day, week, month"),
    ],
)
def test_time_series_precision_rules(api, db, params, fragment):
    params = {"from": "2024-03-01T00:00", "to": "2024-03-01T12:00", "metrics": "count_clicked", **params}
    error = assert_error(api.get("/api/v1/metrics/deliverability/time-series", params), 400, "1200")
    assert fragment in error["description"]


def test_metrics_need_the_metrics_grant(api_with, db):
    params = {"from": "2024-03-01T00:00", "metrics": "count_clicked"}
    assert_error(api_with("message_events/view").get("/api/v1/metrics/deliverability", params), 403, "1100")
    assert api_with("metrics/view").get("/api/v1/metrics/deliverability", params).status_code == 200


def test_relanding_the_same_events_changes_nothing(api, events):
    params = {"from": _fmt(S), "to": _fmt(E), "metrics": ",".join(ALL)}
    before = _get(api, "deliverability", **params)
    data.land(events, batch=500, seed=3)
    assert _get(api, "deliverability", **params) == before


def test_utc_day_series_and_long_windows_read_daily_rollups_consistently(api, events):
    got = _get(
        api, "deliverability/time-series", **{"from": "2024-03-01T06:00", "to": "2024-03-05T18:00"},
        metrics="count_targeted,count_unique_clicked", precision="day",
    )  # fmt: skip
    start, end = S + timedelta(hours=6), S + timedelta(days=4, hours=18)
    expected = data.brute(events, start=start, end=end, key=lambda e: data.local_day(e, ZoneInfo("UTC")))
    assert [row["ts"] for row in got][0] == "2024-03-01T00:00:00+00:00" and len(got) == 5
    for row in got:
        assert row["count_targeted"] == expected.get(row["ts"], {}).get("count_targeted", 0)
        assert row["count_unique_clicked"] == expected.get(row["ts"], {}).get("count_unique_clicked", 0)
