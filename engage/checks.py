"""Every setting is checked when a process starts, not at first use (Django system checks).

They run for ``manage.py check``, ``runserver``, ``migrate`` and every other command that
checks, and ``startup_check`` runs them where Django would not: in the WSGI application
(``engage/wsgi.py``: gunicorn) and in Celery's worker and beat (``engage/celery.py``). An
error stops the process with the message and a hint saying what to set:

- ``engage.E001`` ``ENGAGE_SECRET_KEY`` missing, a placeholder, or weak (``engage.keys``).
- ``engage.E002`` ``ENGAGE_TRACKING_KEYS`` missing or malformed (the rule is
  ``tracking.signing.tracking_keys``: ``kid:secret``, key ids 0-255 and unique, secrets of
  16 bytes or more).
- ``engage.E003`` ``ENGAGE_TRACKING_BASE_URL`` not ``http(s)://host[:port]``.
- ``engage.E004`` ``ENGAGE_RELAY_URL`` not one ``transmissions.delivery.RelayConfig`` reads.
- ``engage.E005`` a ``DATABASE_URL`` query parameter that is not a libpq connection
  parameter (``sslmode`` and the like are kept, ``engage/env.py``).
- ``engage.E006`` an ``ENGAGE_WEBHOOK_ALLOWED_TARGETS`` entry that is neither a CIDR block
  nor ``host:port`` (the rule is ``analytics.targets.AllowList.parse``).
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from engage.keys import MAKE_SECRET_KEY, MAKE_TRACKING_KEY, secret_key_problem

_WHERE = "in the environment or in .env"


@register("engage")
def check_secret_key(app_configs, **kwargs) -> list[Error]:
    problem = secret_key_problem(settings._wrapped.SECRET_KEY)  # the raw value: reading "" raises
    if problem is None:
        return []
    hint = f"Make one with `{MAKE_SECRET_KEY}` and set ENGAGE_SECRET_KEY to it {_WHERE}."
    return [Error(problem + ".", hint=hint, id="engage.E001")]


@register("engage")
def check_tracking_keys(app_configs, **kwargs) -> list[Error]:
    from tracking.signing import tracking_keys

    hint = (
        f"Make one with `{MAKE_TRACKING_KEY}` and set ENGAGE_TRACKING_KEYS to it {_WHERE} "
        "(comma-separated kid:secret entries; the last one signs, all verify)."
    )
    if not settings.ENGAGE_TRACKING_KEYS:
        return [Error("ENGAGE_TRACKING_KEYS is not set.", hint=hint, id="engage.E002")]
    try:
        tracking_keys()
    except ImproperlyConfigured as exc:
        return [Error(f"{exc}.", hint=hint, id="engage.E002")]
    return []


@register("engage")
def check_tracking_base_url(app_configs, **kwargs) -> list[Error]:
    url = settings.ENGAGE_TRACKING_BASE_URL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        parts = None
    if parts and parts.scheme in {"http", "https"} and parts.hostname and not parts.username:
        if not (parts.path or parts.query or parts.fragment):
            return []
    return [
        Error(
            f"ENGAGE_TRACKING_BASE_URL={url!r} is not scheme://host[:port].",
            hint="Set it to the http:// or https:// address, without a path, at which recipients reach "
            f"Engage's /q/, /f/ and /u/ links, e.g. https://track.example.com, {_WHERE}.",
            id="engage.E003",
        )
    ]


@register("engage")
def check_relay_url(app_configs, **kwargs) -> list[Error]:
    from transmissions.delivery import RelayConfig

    try:
        RelayConfig.from_url(settings.ENGAGE_RELAY_URL)
    except ValueError:
        return [
            Error(
                f"ENGAGE_RELAY_URL={settings.ENGAGE_RELAY_URL!r} is not an SMTP relay URL.",
                hint="Use smtp://host:port, smtp+starttls://user:pass@host:587 or smtps://user:pass@host:465 "
                f"{_WHERE}.",
                id="engage.E004",
            )
        ]
    return []


@register("engage")
def check_database_options(app_configs, **kwargs) -> list[Error]:
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    errors = []
    for alias, database in settings.DATABASES.items():
        for name, value in database.get("OPTIONS", {}).items():
            try:
                make_conninfo("", **{name: value})
            except ProgrammingError as exc:
                errors.append(
                    Error(
                        f"DATABASE_URL parameter {name!r} of database {alias!r}: {exc}.",
                        hint="Query parameters of DATABASE_URL are libpq connection parameters, e.g. "
                        "?sslmode=verify-full&sslrootcert=/path/ca.pem",
                        id="engage.E005",
                    )
                )
    return errors


@register("engage")
def check_webhook_allowed_targets(app_configs, **kwargs) -> list[Error]:
    from analytics.targets import AllowList

    try:
        AllowList.parse(settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS)
    except ValueError as exc:
        hint = "Each entry is a CIDR block (10.0.0.0/8, ::1/128) or host:port (hooks.lan:8080, [::1]:9000)."
        return [Error(f"{exc}.", hint=hint, id="engage.E006")]
    return []


def startup_check() -> None:
    """Run every system check, as ``manage.py check`` does; raise ``SystemCheckError`` (its
    message lists each error with its hint) when any is an error. Warnings are printed."""
    from django.core.management import call_command

    call_command("check", stdout=io.StringIO())
