"""The send page's "Send later" (``/transmissions/new/``): a date input and a time input in
UTC. A half-filled one or a moment in the past is a form error, never a send now (found by an
attacker: both sent at once, the past one while saying "scheduled for 2020-01-01")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.forms import parse_start_time
from templates_app.services import template_create
from tests.console.helpers import CONTENT, created_id, errors_shown, send_empty_for
from tests.console.helpers import SEND_PAGE as PAGE
from tests.console.helpers import send_form as form
from transmissions.models import Transmission

pytestmark = pytest.mark.usefixtures("shop")


@pytest.fixture
def shop(db):
    template_create(template_id="promo", name="Promo", published=True, content=CONTENT, options={})


def to_addresses(**overrides: str) -> dict[str, str]:
    confirmed = send_empty_for(overrides.get("template", "promo"), "ann@example.com")  # {{name}}: sent empty
    return form(recipient_list="", addresses="ann@example.com", send_empty=confirmed, **overrides)


@pytest.mark.parametrize(
    ("when", "said"),
    [
        ({"start_time": "10:30"}, "Send later has a time (10:30) but no date"),
        ({"start_date": "2030-06-01"}, "Send later has a date (2030-06-01) but no time"),
        # A raw POST of the API's single field, cut short.
        ({"start_time": "2030-06-01"}, "Send later has a date (2030-06-01) but no time"),
        ({"start_date": "2030-06-01", "start_time": "25:00"}, "is not a date and time"),
        ({"start_date": "June 1st", "start_time": "10:30"}, "is not a date and time"),
    ],
)
def test_a_half_filled_send_later_is_refused_and_sends_nothing(staff, when, said):
    response = staff.post(PAGE, to_addresses(**when))
    assert response.status_code == 400
    assert said in errors_shown(response), errors_shown(response)
    assert not Transmission.objects.exists()


@pytest.mark.parametrize(
    "when",
    [{"start_date": "2020-01-01", "start_time": "00:00"}, {"start_time": "2020-01-01T00:00"}],
)
def test_a_start_in_the_past_is_refused_not_sent_now(staff, when):
    response = staff.post(PAGE, to_addresses(**when))
    shown = errors_shown(response)
    assert response.status_code == 400
    assert "Send later is in the past: 2020-01-01 00:00 UTC is before now" in shown, shown
    assert not Transmission.objects.exists()


def test_an_hour_ago_today_is_in_the_past_too(staff):
    before = datetime.now(UTC) - timedelta(hours=1)
    response = staff.post(PAGE, to_addresses(start_date=f"{before:%Y-%m-%d}", start_time=f"{before:%H:%M}"))
    assert response.status_code == 400 and "is in the past" in errors_shown(response)
    assert not Transmission.objects.exists()


def test_the_current_minute_is_not_the_past():
    now = datetime(2030, 6, 1, 10, 30, 59, tzinfo=UTC)
    assert parse_start_time("2030-06-01", "10:30", now=now) == datetime(2030, 6, 1, 10, 30, tzinfo=UTC)
    assert parse_start_time(" ", "", now=now) is None


def test_a_start_tomorrow_is_scheduled_and_said_so(staff):
    later = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    response = staff.post(PAGE, to_addresses(start_date=f"{later:%Y-%m-%d}", start_time=f"{later:%H:%M}"))
    tid = created_id(response)
    assert Transmission.objects.get(pk=tid).start_time == later
    assert f"scheduled for {later:%Y-%m-%d %H:%M:%S} UTC" in staff.get(f"/transmissions/{tid}/").content.decode()


def test_the_start_fields_ask_for_an_iso_date_and_a_24_hour_time_whatever_the_browser_s_locale(staff):
    # Found by a newcomer: date and time pickers showed 06/01/2030 and 10:30 AM beside "UTC".
    html = staff.get(PAGE).content.decode()
    when = html.split('id="field-start_time"', 1)[1].split("</fieldset>", 1)[0]
    assert 'type="date"' not in when and 'type="time"' not in when
    assert 'name="start_date"' in when and 'placeholder="YYYY-MM-DD"' in when
    assert 'name="start_time"' in when and 'placeholder="HH:MM"' in when
    assert "UTC (24-hour)" in when and "the time as HH:MM on a 24-hour clock" in when
