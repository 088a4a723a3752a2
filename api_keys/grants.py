"""The grant names a key may hold (SPEC A.1), ``resource/action`` with a slash."""

from __future__ import annotations

ALL_GRANTS: tuple[str, ...] = (
    "transmissions/modify",
    "transmissions/view",
    "templates/modify",
    "templates/view",
    "templates/preview",
    "recipient_lists/manage",
    "metrics/view",
    "message_events/view",
    "webhooks/view",
    "webhooks/modify",
    "smtp/inject",
    "suppression_lists/manage",
    "tracking_consent/manage",
)


def parse_grants(spec: str) -> list[str]:
    """``"all"`` or a comma list of grant names; raises ValueError naming an unknown grant."""
    if spec.strip().lower() == "all":
        return list(ALL_GRANTS)
    grants = [item.strip() for item in spec.split(",") if item.strip()]
    unknown = [grant for grant in grants if grant not in ALL_GRANTS]
    if unknown:
        raise ValueError(f"unknown grant(s): {', '.join(unknown)}; known: {', '.join(ALL_GRANTS)}")
    if not grants:
        raise ValueError("at least one grant is required")
    return sorted(set(grants))
