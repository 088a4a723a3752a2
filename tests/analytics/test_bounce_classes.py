"""The apps that sort bounces by class agree with the one table of classes (mailcore.bounces):
the rollups' bounce counters, the suppression list's hard bounces."""

from __future__ import annotations

import re

from analytics.rollups import _COUNT_FILTERS
from mailcore.bounces import BOUNCE_CLASSES, CATEGORIES
from suppression.models import HARD_BOUNCE_CLASSES


def test_each_bounce_counter_counts_the_classes_of_its_category():
    for category in CATEGORIES:
        counted = set(re.findall(r"'([0-9]+)'", _COUNT_FILTERS[f"{category}_bounce"]))
        assert counted == {bounce.code for bounce in BOUNCE_CLASSES if bounce.category == category}, category


def test_the_suppression_list_takes_the_hard_classes():
    assert {bounce.code for bounce in BOUNCE_CLASSES if bounce.category == "hard"} == HARD_BOUNCE_CLASSES
