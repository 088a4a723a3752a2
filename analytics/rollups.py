"""Rollup maintenance, called by the event lander inside its landing transaction.

Placeholder until the metrics issue: it keeps the contract so the lander can call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def rollups_apply(cursor: Any, events: Sequence[dict]) -> None:
    """Fold newly landed events (dicts with Event column names) into the rollup tables."""
    return None
