from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api_keys.grants import ALL_GRANTS, parse_grants
from api_keys.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key with the grants named (no default: give a key the least it needs) and "
        "print it once (only its hash is stored)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--label", required=True)
        parser.add_argument(
            "--grants",
            required=True,
            help=f'a comma list of {", ".join(ALL_GRANTS)} (e.g. "transmissions/modify,templates/view"), or "all"',
        )

    def handle(self, *args: Any, label: str, grants: str, **options: Any) -> None:
        try:
            grant_list = parse_grants(grants)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        _key, raw = api_key_create(label=label, grants=grant_list)
        self.stdout.write(raw)
