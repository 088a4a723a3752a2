"""Every date a console page shows is written one way: ``YYYY-MM-DD HH:MM:SS UTC``
(``console.templatetags.console.when``), whatever page and whatever stored it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.console.helpers import hours_ago, land_stories, sink_fill, story
from transmissions.models import Transmission, TransmissionState

ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
# Anything that looks like a date or a time of day, with what may follow it (a zone, an offset).
DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d| ?[A-Z]{3}\b)?")


def dates_shown(html: str) -> list[str]:
    """The dates in the page's text: tags and their attributes left out, and the <code> of an
    equivalent API query (the API's own format), scripts and styles."""
    text = re.sub(r"<(code|script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return DATE_LIKE.findall(text)


@pytest.fixture
def transmissions(db) -> list[int]:
    now = datetime.now(UTC)
    done = Transmission.objects.create(
        campaign_id="done", state=TransmissionState.SUCCESS, num_rcpts=1, num_generated=1,
        generation_start_time=now - timedelta(minutes=5), generation_end_time=now - timedelta(minutes=4),
    )  # fmt: skip
    later = Transmission.objects.create(campaign_id="later", start_time=now + timedelta(hours=3))
    return [done.id, later.id]


def test_the_dates_checker_sees_every_format_the_pages_used():
    html = "<p>a 2026-11-30 19:39 b 2026-11-30T19:39:13+00:00 c 2026-11-30 19:39:13</p><code>2026-01-01T00:00</code>"
    assert dates_shown(html) == ["2026-11-30 19:39", "2026-11-30T19:39:13+00:00", "2026-11-30 19:39:13"]


@pytest.mark.parametrize("page", ["/", "/transmissions/", "detail of a finished one", "detail of a scheduled one"])
def test_the_overview_and_the_transmission_pages_write_every_date_one_way(staff, transmissions, page):
    path = {"detail of a finished one": f"/transmissions/{transmissions[0]}/",
            "detail of a scheduled one": f"/transmissions/{transmissions[1]}/"}.get(page, page)  # fmt: skip
    shown = dates_shown(staff.get(path).content.decode())
    assert shown and [date for date in shown if not ONE_FORMAT.fullmatch(date)] == []


def test_the_message_search_writes_every_date_one_way(staff, db):
    land_stories(story("m-jo", "jo@example.com", hours_ago(5), kinds=("injection", "delivery", "open")))
    shown = dates_shown(staff.get("/messages/").content.decode())
    assert len(shown) >= 5 and [date for date in shown if not ONE_FORMAT.fullmatch(date)] == []


def test_the_sink_pages_write_every_date_one_way(staff, settings, tmp_path):
    settings.ENGAGE_SINK_DIR = tmp_path
    (name,) = sink_fill(tmp_path, 1)
    for path in ("/report/sink/", f"/report/sink/{name}"):
        shown = dates_shown(staff.get(path).content.decode())
        assert shown and [date for date in shown if not ONE_FORMAT.fullmatch(date)] == [], path
