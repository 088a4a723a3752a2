from __future__ import annotations

from django.apps import AppConfig


class TransmissionsConfig(AppConfig):
    """Transmissions, and its answers to the questions the apps below it ask."""

    name = "transmissions"

    def ready(self) -> None:
        """Answer "is this template / list still needed?" (templates_app and recipient_lists
        sit below transmissions, so they ask through signals instead of importing it)."""
        from recipient_lists.selectors import recipient_list_needed  # imports models: not before ready()
        from templates_app.selectors import template_needed  # imports models: not before ready()
        from transmissions.selectors import transmission_uses_list, transmission_uses_template  # models: ready()

        template_needed.connect(transmission_uses_template, dispatch_uid="transmissions.uses_template")
        recipient_list_needed.connect(transmission_uses_list, dispatch_uid="transmissions.uses_list")
