from __future__ import annotations

from django.apps import AppConfig


class EngageConfig(AppConfig):
    """The project package as an app: its start-up checks and its management commands."""

    name = "engage"
    verbose_name = "Engage"

    def ready(self) -> None:
        from engage import checks  # noqa: F401 - registers the checks, in ready() as Django asks
