"""``manage.py reset_admin_password [--username admin]``: give an existing account a new
random password and print it once (only its hash is stored). For the account ``scripts/run``
made on its first start (user ``admin``) when its password is lost. Nothing else about the
account changes; one that is inactive or not staff is named on stderr (it still cannot sign in
to the console or the admin).

Errors (exit status 1, nothing changed): no account of that name.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

#: Random bytes of a new password (token_urlsafe: 16 characters).
PASSWORD_BYTES = 12


class Command(BaseCommand):
    help = "Give an account (default: admin) a new random password and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="the account (default: admin)")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"no account named {username!r}; make one with: ./manage.py createsuperuser --username {username}"
            )
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        user.set_password(password)
        user.save(update_fields=["password"])
        if not (user.is_active and user.is_staff):
            self.stderr.write(f"engage: {username!r} is inactive or not staff: it cannot sign in to the console")
        self.stdout.write(f"engage: admin account: user '{username}', new password '{password}' (shown once)")
