import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from api_keys.grants import ALL_GRANTS
from api_keys.models import ApiKey
from api_keys.services import api_key_create

DEMO_LABEL = "demo (created by scripts/run)"


class Command(BaseCommand):
    help = "The first time: create a demo API key with every grant and an admin account, and print them once."

    def handle(self, *args: Any, **options: Any) -> None:
        if ApiKey.objects.filter(label=DEMO_LABEL).exists():
            if options["verbosity"] >= 1:  # scripts/run says it in its own words (--verbosity 0)
                self.stderr.write(
                    "engage: the demo API key exists (shown once when it was created); "
                    "make another with: ./manage.py create_api_key --label me --grants all"
                )
        else:
            _key, raw = api_key_create(label=DEMO_LABEL, grants=list(ALL_GRANTS))
            self.stdout.write(f"engage: demo API key (shown once, keep it): {raw}")
        users = get_user_model().objects
        if not users.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@localhost", password)
            self.stdout.write(f"engage: admin account (shown once): user 'admin', password '{password}'")
