from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib import messages
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest


def _say_signed_out(sender: Any, request: HttpRequest | None = None, user: Any = None, **_kwargs: Any) -> None:
    """Log out (the console's nav, the admin's header) lands on the sign-in page
    (``LOGOUT_REDIRECT_URL``): say there that it worked. Sent before the session is flushed;
    the message travels in the messages cookie, which the flush leaves alone."""
    if request is not None and user is not None:
        messages.info(request, f"Signed out {user.get_username()}. Sign in again below.")


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        user_logged_out.connect(_say_signed_out, dispatch_uid="console.signed_out")
