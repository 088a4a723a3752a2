"""``makemigrations`` without the start-up checks of Engage's own settings (``engage/checks.py``).

Writing migrations from the models needs no secret or tracking key, so a fresh checkout can run
``manage.py makemigrations --check`` before any key exists; every other system check (models,
URLs, templates...) still runs. Serving processes and ``migrate`` keep refusing to start
without keys.
"""

from __future__ import annotations

from django.core.checks import Tags
from django.core.management.commands.makemigrations import Command as MakeMigrations


class Command(MakeMigrations):
    requires_system_checks = [
        Tags.admin, Tags.async_support, Tags.caches, Tags.compatibility, Tags.files, Tags.models,
        Tags.signals, Tags.staticfiles, Tags.templates, Tags.translation, Tags.urls,
    ]  # fmt: skip
