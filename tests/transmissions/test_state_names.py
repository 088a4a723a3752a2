"""Message and transmission states have one owner (``transmissions.models``): the raw SQL of
the send path names them as literals (a partial index is used only when a query repeats its
condition word for word), so every literal compared with a ``state`` column must be a value
of ``MessageState`` or ``TransmissionState``; renaming a state fails here, not in production."""

from __future__ import annotations

import re
from pathlib import Path

from transmissions.models import MessageState, TransmissionState

ROOT = Path(__file__).resolve().parents[2]
# ``state = 'x'``, ``m.state IN ('x', 'y')``, ``state <> 'x'`` in SQL text
_COMPARISON = re.compile(r"\b(?:\w+\.)?state\s*(?:=|<>|!=|IN\s*\()\s*('[^']*'(?:\s*,\s*'[^']*')*)", re.IGNORECASE)
_LITERAL = re.compile(r"'([^']*)'")
STATES = {state.value for state in MessageState} | {state.value for state in TransmissionState}


def state_literals(source: str) -> list[str]:
    return [value for match in _COMPARISON.finditer(source) for value in _LITERAL.findall(match.group(1))]


def test_the_scan_finds_state_literals_in_sql():
    sql = "WHERE m.state = 'queued' OR (state IN ('sending', 'sent')) AND t.state <> 'Generating'"
    assert state_literals(sql) == ["queued", "sending", "sent", "Generating"]


def test_every_state_named_in_the_apps_sql_is_a_declared_state():
    unknown = {
        f"{path.relative_to(ROOT)}: {value}"
        for package in ("transmissions", "analytics", "suppression", "consent", "smtp_injection", "tracking")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        for value in state_literals(path.read_text(encoding="utf-8"))
        if value not in STATES and not value.startswith("{")  # an f-string's {MessageState.X.value}
    }
    assert not unknown, f"states not declared in transmissions.models: {sorted(unknown)}"
