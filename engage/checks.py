"""Every setting is checked when a process starts, not at first use (Django system checks).

They run for ``manage.py check``, ``runserver``, ``migrate`` and every other command that
checks, and ``startup_check`` runs them where Django would not: in the WSGI application
(``engage/wsgi.py``: gunicorn) and in Celery's worker and beat (``engage/celery.py``). An
error stops the process with the message and a hint saying what to set:

- ``engage.E001`` ``ENGAGE_SECRET_KEY`` missing, or failing the secret rule
  (``engage.keys.secret_key_problem``: 50+ characters, no placeholder, not repetitive, not
  a string found in Engage's own files).
- ``engage.E002`` ``ENGAGE_TRACKING_KEYS`` missing or malformed (the shape is
  ``tracking.signing.tracking_keys``: ``kid:secret``, key ids 0-255 and unique), or an entry
  whose secret fails the same secret rule (``engage.keys.tracking_secret_problem``: 16+
  characters, no placeholder, not repetitive, not in Engage's own files). Every entry is
  checked, the verifying ones too: any of them accepts a forged token.
- ``engage.W001`` (a warning, the process starts) a tracking secret of 16-31 characters
  that passes the rule: new keys have 32 or more (generated ones 43); rotate.
- ``engage.E003`` ``ENGAGE_TRACKING_BASE_URL`` not ``http(s)://host[:port]`` with a valid
  host name or IP address.
- ``engage.E004`` ``ENGAGE_RELAY_URL`` not one ``transmissions.delivery.RelayConfig`` reads.
- ``engage.E005`` a ``DATABASE_URL`` query parameter that is not a libpq connection
  parameter (``sslmode`` and the like are kept, ``engage/env.py``).
- ``engage.E006`` an ``ENGAGE_WEBHOOK_ALLOWED_TARGETS`` entry that is neither a CIDR block
  nor ``host:port`` (the rule is ``analytics.targets.AllowList.parse``).
- ``engage.E007`` ``ENGAGE_API_RATE`` not a rate DRF's own throttle parser reads
  (``<n>/second|minute|hour|day``, n at least 1): it would be a 500 on every API request.
- ``engage.E008`` an integer setting outside the range ``engage/settings.py`` declares for
  it (``env_int``'s minimum / maximum, one table: ``engage.env.INTEGER_BOUNDS``).
- ``engage.E009`` ``ENGAGE_LIST_UNSUBSCRIBE_MAILTO`` not one email address
  (``mailcore.addresses.address_problem``): it is written into List-Unsubscribe.
- ``engage.E010`` an ``ENGAGE_ALLOWED_HOSTS`` entry that is not ``*``, a host name, a
  ``.domain`` or an IP address (no scheme, port or path: Django compares host names).
- ``engage.E011`` ``ENGAGE_LOG_LEVEL`` not a logging level name.
- ``engage.E012`` ``ENGAGE_EVENT_STREAM`` / ``ENGAGE_EVENT_GROUP`` empty, longer than 200
  characters, or holding a space or control character.
- ``engage.E013`` ``REDIS_URL`` not a ``redis://``, ``rediss://`` or ``unix://`` URL with a
  valid host and a numeric database.
- ``engage.E014`` ``ENGAGE_TRACKING_CONSENT_DEFAULT`` not ``granted`` or ``denied``
  (``mailcore.consent.VALUES``).

A setting that is not an integer or a boolean at all stops ``engage/settings.py`` itself
(``engage/env.py`` raises ``ImproperlyConfigured`` naming it).

"""

from __future__ import annotations

import io
import ipaddress
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from analytics.targets import AllowList
from engage.env import INTEGER_BOUNDS, LOG_LEVELS
from engage.keys import (
    MAKE_SECRET_KEY,
    MAKE_TRACKING_KEY,
    TRACKING_SECRET_MIN_LENGTH,
    secret_key_problem,
    tracking_secret_is_short,
    tracking_secret_problem,
)
from mailcore.addresses import address_problem
from mailcore.consent import VALUES as CONSENT_VALUES
from mailcore.domains import host_normalize, tracking_domain_normalize
from tracking.signing import tracking_keys
from transmissions.delivery import RelayConfig

_WHERE = "in the environment or in .env"
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_REDIS_NAME = re.compile(r"[\x21-\x7e]{1,200}")


def host_problem(host: str) -> str | None:
    """Why ``host`` is neither a host name nor an IPv4/IPv6 address (bare or in brackets), or
    None: the host rule of tracked links (``mailcore.domains.host_normalize``: RFC 1123 labels,
    IDNA names, no all-numeric top label); a trailing dot is allowed."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass

    try:
        host_normalize(host.removesuffix("."))
    except ValueError as exc:
        return str(exc)
    return None


@register("engage")
def check_secret_key(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    # The raw value: reading "" raises. django-stubs does not declare LazySettings._wrapped.
    problem = secret_key_problem(settings._wrapped.SECRET_KEY)  # type: ignore[misc]
    if problem is None:
        return []
    hint = f"Make one with `{MAKE_SECRET_KEY}` and set ENGAGE_SECRET_KEY to it {_WHERE}."
    return [Error(problem + ".", hint=hint, id="engage.E001")]


@register("engage")
def check_tracking_keys(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    hint = (
        f"Make one with `{MAKE_TRACKING_KEY}` and set ENGAGE_TRACKING_KEYS to it {_WHERE} "
        "(comma-separated kid:secret entries; the last one signs, all verify)."
    )
    if not settings.ENGAGE_TRACKING_KEYS:
        return [Error("ENGAGE_TRACKING_KEYS is not set.", hint=hint, id="engage.E002")]
    try:
        keys = tracking_keys()
    except ImproperlyConfigured as exc:
        return [Error(f"{exc}.", hint=hint, id="engage.E002")]
    messages: list[CheckMessage] = []
    for kid, raw in reversed(keys):  # as configured, oldest first
        secret = raw.decode("utf-8")
        problem = tracking_secret_problem(secret)
        if problem is not None:
            replace = (
                f"Make a new one with `{MAKE_TRACKING_KEY}` and put it in ENGAGE_TRACKING_KEYS in place of key "
                f"{kid} {_WHERE}. Links signed with key {kid} stop verifying: anyone could have forged them."
            )
            messages.append(Error(f"ENGAGE_TRACKING_KEYS: key {kid} {problem}.", hint=replace, id="engage.E002"))
        elif tracking_secret_is_short(secret):
            messages.append(
                Warning(
                    f"ENGAGE_TRACKING_KEYS: key {kid} is shorter than the {TRACKING_SECRET_MIN_LENGTH} characters "
                    "new keys have.",
                    hint=f"It still signs and verifies. Append a key made with `{MAKE_TRACKING_KEY}` to rotate, and "
                    f"drop key {kid} once its links no longer matter (ENGAGE_TRACKING_LINK_EXPIRY).",
                    id="engage.W001",
                )
            )
    return messages


@register("engage")
def check_tracking_base_url(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    """The same rule as a transmission's ``tracking_domain`` (``mailcore.domains``), with a scheme."""
    url = settings.ENGAGE_TRACKING_BASE_URL
    try:
        valid = url.startswith(("http://", "https://")) and bool(tracking_domain_normalize(url))
    except ValueError:
        valid = False
    if valid:
        return []
    return [
        Error(
            f"ENGAGE_TRACKING_BASE_URL={url!r} is not scheme://host[:port] with a valid host name or IP address.",
            hint="Set it to the http:// or https:// address, without a path, at which recipients reach "
            f"Engage's /q/, /f/ and /u/ links, e.g. https://track.example.com, {_WHERE}.",
            id="engage.E003",
        )
    ]


@register("engage")
def check_relay_url(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
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
def check_database_options(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
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
def check_webhook_allowed_targets(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    try:
        AllowList.parse(settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS)
    except ValueError as exc:
        hint = "Each entry is a CIDR block (10.0.0.0/8, ::1/128) or host:port (hooks.lan:8080, [::1]:9000)."
        return [Error(f"{exc}.", hint=hint, id="engage.E006")]
    return []


@register("engage")
def check_api_rate(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    from rest_framework.throttling import SimpleRateThrottle

    errors = []
    for scope, rate in settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).items():
        name = "ENGAGE_API_RATE" if scope == "api_key" else f"REST_FRAMEWORK throttle rate {scope!r}"
        try:
            # DRF's own parser, the one each throttled request runs (it does not use self).
            requests, _seconds = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
            valid = rate is not None and requests is not None and requests >= 1
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            errors.append(
                Error(
                    f"{name}={rate!r} is not a request rate.",
                    hint="Write <requests>/<period>, with requests 1 or more and period second, minute, hour or "
                    f"day, e.g. 100000/minute, {_WHERE}.",
                    id="engage.E007",
                )
            )
    return errors


@register("engage")
def check_integer_ranges(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    """Every integer setting against the range declared where ``engage/settings.py`` reads
    it (``env_int``; the table is ``engage.env.INTEGER_BOUNDS``)."""
    errors = []
    for name, (minimum, maximum) in INTEGER_BOUNDS.items():
        value = getattr(settings, name)
        if isinstance(value, int) and minimum <= value and (maximum is None or value <= maximum):
            continue
        allowed = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
        errors.append(
            Error(
                f"{name}={value!r} is out of range: it must be {allowed}.",
                hint=f"Set {name} to a whole number {allowed} {_WHERE}, or leave it unset for its default "
                "(.env.example has each one).",
                id="engage.E008",
            )
        )
    return errors


@register("engage")
def check_list_unsubscribe_mailto(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    address = settings.ENGAGE_LIST_UNSUBSCRIBE_MAILTO
    problem = address_problem(address) if address else None  # empty: unsubscribe@<tracking host>
    if problem is None:
        return []
    return [
        Error(
            f"ENGAGE_LIST_UNSUBSCRIBE_MAILTO={address!r} is not one email address: {problem.rstrip('.')}.",
            hint="Set it to a single address such as unsubscribe@example.com (no mailto:, no name, no <>), "
            f"or leave it empty for unsubscribe@<tracking host>, {_WHERE}.",
            id="engage.E009",
        )
    ]


@register("engage")
def check_allowed_hosts(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    errors = []
    for entry in settings.ALLOWED_HOSTS:
        host = entry.removeprefix(".")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if entry == "*" or host_problem(host) is None:
            continue
        errors.append(
            Error(
                f"ENGAGE_ALLOWED_HOSTS entry {entry!r} is not a host name.",
                hint="A comma list of the host names the web server answers for: api.example.com, .example.com "
                f"(it and its subdomains), 203.0.113.7, [::1], or *; no scheme, port or path, {_WHERE}.",
                id="engage.E010",
            )
        )
    return errors


@register("engage")
def check_log_level(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    if settings.ENGAGE_LOG_LEVEL.strip().upper() in LOG_LEVELS:
        return []
    return [
        Error(
            f"ENGAGE_LOG_LEVEL={settings.ENGAGE_LOG_LEVEL!r} is not a logging level.",
            hint=f"Use DEBUG, INFO, WARNING, ERROR or CRITICAL {_WHERE}.",
            id="engage.E011",
        )
    ]


@register("engage")
def check_event_stream_names(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    errors = []
    for name in ("ENGAGE_EVENT_STREAM", "ENGAGE_EVENT_GROUP"):
        value = getattr(settings, name)
        if isinstance(value, str) and _REDIS_NAME.fullmatch(value):
            continue
        errors.append(
            Error(
                f"{name}={value!r} is not a Redis stream or consumer group name.",
                hint="Use 1-200 printable ASCII characters without spaces (engage:events, engage-landers), or "
                f"leave it unset, {_WHERE}.",
                id="engage.E012",
            )
        )
    return errors


@register("engage")
def check_redis_url(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    from redis.connection import parse_url

    url = settings.REDIS_URL
    try:
        parse_url(url)  # redis-py's own reading: scheme, port, database number, options
        parts = urlsplit(url)
        valid = not _SPACE_OR_CONTROL.search(url) and (
            parts.scheme == "unix"
            or (host_problem(parts.hostname or "") is None and re.fullmatch(r"/?\d*", parts.path) is not None)
        )
    except ValueError:
        valid = False
    if valid:
        return []
    return [
        Error(
            "REDIS_URL is not a Redis URL: redis://, rediss:// or unix://, a valid host, a numeric database.",
            hint=f"e.g. redis://127.0.0.1:6379/0 or rediss://:password@redis.example.com:6380/0 {_WHERE}; leave "
            "it unset for the embedded Redis under ENGAGE_VAR_DIR.",
            id="engage.E013",
        )
    ]


@register("engage")
def check_tracking_consent_default(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[Error]:
    value = settings.ENGAGE_TRACKING_CONSENT_DEFAULT
    if value in CONSENT_VALUES:
        return []
    return [
        Error(
            f"ENGAGE_TRACKING_CONSENT_DEFAULT={value!r} is not one of {', '.join(CONSENT_VALUES)}.",
            hint="granted: every recipient is tracked unless they denied (SparkPost's behaviour); "
            f"denied: only recipients who granted are tracked. Set it {_WHERE}.",
            id="engage.E014",
        )
    ]


def startup_check() -> None:
    """Run every system check, as ``manage.py check`` does; raise ``SystemCheckError`` (its
    message lists each error with its hint) when any is an error. Warnings are printed."""
    from django.core.management import call_command

    call_command("check", stdout=io.StringIO())
