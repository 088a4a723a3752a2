from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engage.keys import new_tracking_key


def _configured_ids() -> list[int]:
    ids = []
    for entry in settings.ENGAGE_TRACKING_KEYS:
        kid, sep, _ = str(entry).partition(":")
        if sep and kid.strip().isdigit():
            ids.append(int(kid))
    return ids


class Command(BaseCommand):
    help = (
        "Print a new random ENGAGE_TRACKING_KEYS entry, kid:secret. With keys configured, its key id is one "
        "above the highest, to append for a rotation (the last entry signs, all verify)."
    )
    requires_system_checks: list[str] = []  # it is how a missing key gets made

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--key-id", type=int, help="the key id, 0-255 (default: 1, or the next free one)")

    def handle(self, *args: Any, key_id: int | None = None, **options: Any) -> None:
        ids = _configured_ids()
        if key_id is None:
            key_id = max(ids) + 1 if ids else 1
        if not 0 <= key_id <= 255:
            raise CommandError("the key id must be in 0-255")
        entry = new_tracking_key(key_id)
        self.stdout.write(entry)
        if ids:
            current = ",".join(settings.ENGAGE_TRACKING_KEYS)
            self.stderr.write(f"To rotate, append it: ENGAGE_TRACKING_KEYS={current},{entry}")
