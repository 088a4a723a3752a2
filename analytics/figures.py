"""PURE: the figures people read about a window of sends, named and rated once for the
report (``analytics.report``) and the console's overview: each metric's label, the metric its
rate is of, and how a rate is written (:func:`percent`). The metrics are
``analytics.metrics.METRICS``'s."""

from __future__ import annotations

#: (metric of the metrics API, label, the metric its rate is of, or "").
DELIVERABILITY: tuple[tuple[str, str, str], ...] = (
    ("count_targeted", "Targeted", ""),
    ("count_injected", "Injected", "count_targeted"),
    ("count_generation_failed", "Generation failures", "count_targeted"),
    ("count_rejected", "Rejected (policy, generation)", "count_targeted"),
    ("count_accepted", "Accepted (delivered)", "count_targeted"),
    ("count_delayed", "Delays", "count_injected"),
    ("count_bounce", "Bounced", "count_injected"),
    ("count_hard_bounce", "Hard bounces", "count_injected"),
    ("count_soft_bounce", "Soft bounces", "count_injected"),
    ("count_block_bounce", "Block bounces", "count_injected"),
    ("count_admin_bounce", "Admin bounces", "count_injected"),
    ("count_undetermined_bounce", "Undetermined bounces", "count_injected"),
)
ENGAGEMENT: tuple[tuple[str, str, str], ...] = (
    ("count_unique_confirmed_opened", "Unique confirmed opens", "count_accepted"),
    ("count_unique_clicked", "Unique clicks", "count_accepted"),
    ("count_clicked", "Total clicks", ""),
    ("count_unsubscribe", "Unsubscribes (list and link)", "count_accepted"),
)
#: How a rate names the metric it is of ("12.5 % of targeted").
BASE_LABELS = {"count_targeted": "targeted", "count_injected": "injected", "count_accepted": "delivered"}
_BY_METRIC = {metric: (label, base) for metric, label, base in (*DELIVERABILITY, *ENGAGEMENT)}


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage for people: one decimal, or as many as it takes
    (up to three) for a non-zero part not to read 0.0 % and a partial whole not to read
    100.0 %; "–" for an empty whole. A space before the sign: ``"0.03 %"``."""
    if not whole:
        return "–"
    value = 100 * part / whole
    for digits in (1, 2, 3):
        shown = f"{value:.{digits}f}"
        if not ((part and float(shown) == 0) or (part != whole and float(shown) == 100)):
            return f"{shown} %"
    return "< 0.001 %" if value < 50 else "> 99.999 %"


def figure_rows(metrics: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """The (metric, label, base) rows of ``metrics``, in that order (each a metric of
    :data:`DELIVERABILITY` or :data:`ENGAGEMENT`; KeyError otherwise)."""
    return tuple((metric, *_BY_METRIC[metric]) for metric in metrics)


def figures(rows: tuple[tuple[str, str, str], ...], totals: dict[str, int]) -> list[dict[str, object]]:
    """``[{"metric", "label", "value", "rate", "of"}]`` for ``rows`` over ``totals`` (every
    metric and base of ``rows`` a key): ``rate`` is :func:`percent` of the base, ``""`` without one."""
    return [
        {"metric": metric, "label": label, "value": totals[metric],
         "rate": percent(totals[metric], totals[base]) if base else "", "of": BASE_LABELS.get(base, "")}
        for metric, label, base in rows
    ]  # fmt: skip
