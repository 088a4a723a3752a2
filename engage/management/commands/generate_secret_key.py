from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from engage.keys import new_secret_key


class Command(BaseCommand):
    help = "Print a new random value for ENGAGE_SECRET_KEY (64 characters)."
    requires_system_checks: list[str] = []  # it is how a missing key gets made

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(new_secret_key())
