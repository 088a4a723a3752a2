from __future__ import annotations

import itertools

import pytest

from mailcore.options import EffectiveOptions, effective_options

LEVEL_VALUES = (True, False, None)


def _expected(tx, tpl, default):
    for value in (tx, tpl, default):
        if value is not None:
            return value
    return True


@pytest.mark.parametrize("option", ["open_tracking", "click_tracking"])
@pytest.mark.parametrize(("tx", "tpl", "default"), list(itertools.product(LEVEL_VALUES, LEVEL_VALUES, (True, False))))
def test_tracking_option_follows_transmission_then_template_then_default(option, tx, tpl, default):
    result = effective_options(transmission={option: tx}, template={option: tpl}, defaults={option: default})
    assert getattr(result, option) is _expected(tx, tpl, default)


@pytest.mark.parametrize(
    ("tx_open", "tpl_open", "default_open", "tx_click", "tpl_click", "default_click"),
    list(itertools.product(LEVEL_VALUES, LEVEL_VALUES, (True, False), repeat=2))[::7],
)
def test_open_and_click_tracking_are_resolved_independently(
    tx_open, tpl_open, default_open, tx_click, tpl_click, default_click
):
    result = effective_options(
        transmission={"open_tracking": tx_open, "click_tracking": tx_click},
        template={"open_tracking": tpl_open, "click_tracking": tpl_click},
        defaults={"open_tracking": default_open, "click_tracking": default_click},
    )
    assert result.open_tracking is _expected(tx_open, tpl_open, default_open)
    assert result.click_tracking is _expected(tx_click, tpl_click, default_click)


def test_missing_keys_and_missing_template_mean_not_given():
    result = effective_options(transmission={}, template=None, defaults={"open_tracking": False})
    assert result == EffectiveOptions(open_tracking=False, click_tracking=True, initial_open=False, transactional=False)


def test_no_transmission_options_at_all_falls_back_to_template():
    result = effective_options(transmission=None, template={"click_tracking": False}, defaults={"click_tracking": True})
    assert result.click_tracking is False


def test_empty_defaults_track_opens_and_clicks_and_are_not_transactional():
    assert effective_options(transmission=None, template=None, defaults={}) == EffectiveOptions(
        open_tracking=True, click_tracking=True, initial_open=True, transactional=False
    )


@pytest.mark.parametrize(
    ("tx", "tpl", "expected"),
    [
        (None, None, False),
        (True, None, True),
        (None, True, True),
        (False, True, False),
        (True, False, True),
        (None, False, False),
        (False, None, False),
    ],
)
def test_transactional_follows_the_same_chain_and_defaults_to_false(tx, tpl, expected):
    result = effective_options(transmission={"transactional": tx}, template={"transactional": tpl}, defaults={})
    assert result.transactional is expected


def test_transactional_server_default_applies_when_no_level_gives_it():
    result = effective_options(transmission={}, template={}, defaults={"transactional": True})
    assert result.transactional is True


@pytest.mark.parametrize("open_tracking", [True, False])
def test_initial_open_defaults_to_effective_open_tracking(open_tracking):
    result = effective_options(transmission={"open_tracking": open_tracking}, template=None, defaults={})
    assert result.initial_open is open_tracking


@pytest.mark.parametrize(
    ("tx", "tpl", "default_initial", "expected"),
    [
        (False, None, None, False),
        (None, False, None, False),
        (None, None, False, False),
        (True, False, False, True),
        (None, True, False, True),
        (False, True, True, False),
    ],
)
def test_initial_open_follows_the_chain_when_open_tracking_is_on(tx, tpl, default_initial, expected):
    result = effective_options(
        transmission={"initial_open": tx, "open_tracking": True},
        template={"initial_open": tpl},
        defaults={"initial_open": default_initial},
    )
    assert result.initial_open is expected


@pytest.mark.parametrize("where", ["transmission", "template", "defaults"])
def test_initial_open_is_false_whenever_open_tracking_is_off(where):
    levels = {
        "transmission": {"initial_open": True},
        "template": {"initial_open": True},
        "defaults": {"initial_open": True},
    }
    levels[where] = {**levels[where], "open_tracking": False}
    result = effective_options(**levels)
    assert result.open_tracking is False
    assert result.initial_open is False


def test_result_is_frozen():
    result = effective_options(transmission=None, template=None, defaults={})
    with pytest.raises(AttributeError):
        result.open_tracking = False  # type: ignore[misc]
