"""Effective engagement options for a transmission: one pure precedence function.

No Django, no I/O: the caller passes the three levels as plain mappings (the transmission's
``options``, the template's ``options`` and the server defaults from settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["DEFAULTS", "EffectiveOptions", "effective_options"]

#: SparkPost's defaults (SPEC A.2, B §1.2): what an option is when no level gives it. The
#: server defaults ``ENGAGE_OPEN_TRACKING`` / ``ENGAGE_CLICK_TRACKING`` start from these.
DEFAULTS: Mapping[str, bool] = MappingProxyType({"open_tracking": True, "click_tracking": True, "transactional": False})


@dataclass(frozen=True, slots=True)
class EffectiveOptions:
    """The engagement options that apply to every message of one transmission."""

    open_tracking: bool
    click_tracking: bool
    initial_open: bool
    transactional: bool


def _first_given(key: str, *levels: Mapping[str, Any] | None) -> Any:
    for level in levels:
        if level is not None:
            value = level.get(key)
            if value is not None:
                return value
    return None


def effective_options(
    *,
    transmission: Mapping[str, Any] | None,
    template: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
) -> EffectiveOptions:
    """Resolve ``open_tracking``, ``click_tracking``, ``initial_open`` and ``transactional``.

    Order, highest first (SPEC A.2, B §1.2), for every option:

    1. the transmission's ``options``;
    2. the template's ``options`` (``template`` is None for inline content);
    3. the server ``defaults`` (``ENGAGE_OPEN_TRACKING`` / ``ENGAGE_CLICK_TRACKING``).

    At every level a missing key or ``None`` means "not given" and the next level decides
    (clients send ``null`` for what the caller did not set).

    - ``open_tracking`` / ``click_tracking`` / ``transactional``: when no level gives a
      value, :data:`DEFAULTS` (true, true, false).
    - ``initial_open``: the same chain, where the defaults level is
      ``defaults["initial_open"]`` if given (the account-wide ``initial_open_pixel_tracking``)
      and otherwise the effective ``open_tracking``. It is always false when the effective
      ``open_tracking`` is false: there is no top pixel without open tracking.
    """
    open_tracking = _first_given("open_tracking", transmission, template, defaults)
    click_tracking = _first_given("click_tracking", transmission, template, defaults)
    transactional = _first_given("transactional", transmission, template, defaults)
    open_tracking = DEFAULTS["open_tracking"] if open_tracking is None else bool(open_tracking)
    initial_open = _first_given("initial_open", transmission, template, defaults)
    initial_open = open_tracking if initial_open is None else bool(initial_open)
    return EffectiveOptions(
        open_tracking=open_tracking,
        click_tracking=DEFAULTS["click_tracking"] if click_tracking is None else bool(click_tracking),
        initial_open=open_tracking and initial_open,
        transactional=DEFAULTS["transactional"] if transactional is None else bool(transactional),
    )
