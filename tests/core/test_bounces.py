"""SparkPost's bounce classes (mailcore/bounces.py). No database; the rollups' agreement with
the table is checked in tests/analytics/test_bounce_classes.py."""

from __future__ import annotations

from mailcore.bounces import BOUNCE_CLASSES, BY_CODE, CATEGORIES, bounce_class_text


def test_each_class_is_listed_once_with_a_known_category():
    assert len(BY_CODE) == len(BOUNCE_CLASSES)
    assert {bounce.code: bounce.category for bounce in BOUNCE_CLASSES if bounce.category not in CATEGORIES} == {}
    assert {bounce.category for bounce in BOUNCE_CLASSES} == set(CATEGORIES)


def test_the_hard_classes_are_sparkposts():
    assert {bounce.code for bounce in BOUNCE_CLASSES if bounce.category == "hard"} == {"10", "30", "90"}


def test_a_class_in_words():
    assert bounce_class_text("10") == "10 Invalid Recipient (hard)"
    assert bounce_class_text("70") == "70 Transient Failure (soft)"


def test_an_unknown_or_missing_class_is_shown_as_it_is():
    assert bounce_class_text("999") == "999"
    assert bounce_class_text("") == ""
