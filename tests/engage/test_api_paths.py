"""Which paths are the API's (``engage.api.paths.is_api_path``): one rule, read by every
middleware and error page that answers the API's JSON envelope instead of a page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engage.api.paths import is_api_path
from tests.helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("mailcore", "engage", "api_keys", "templates_app", "recipient_lists", "transmissions", "tracking",
           "analytics", "smtp_injection", "suppression", "consent", "console")  # fmt: skip


@pytest.mark.parametrize(
    ("path", "api"),
    [("/api", True), ("/api/", True), ("/api/v1/templates", True), ("/apiary", False), ("/", False),
     ("/report/api/", False), ("/API/v1", False)],
)  # fmt: skip
def test_the_api_is_api_and_everything_below_it(path, api):
    assert is_api_path(path) is api


def test_the_rule_is_written_once():
    # A second copy drifted: "/api" was the API's for the 404 page and nobody else's.
    copies = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in SHIPPED
        for path in (ROOT / package).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"""(startswith\(|==\s*)["']/api/?["']""", line) and path.name != "paths.py"
    ]
    assert copies == []


@pytest.mark.django_db
def test_a_nul_under_the_bare_api_path_answers_the_envelope_as_its_404_does(client):
    assert_error(client.get("/api"), 404, "1101")
    assert_error(client.get("/api?q=%00"), 400, "1200")
