"""Typed helpers for reading the environment.

Only ``engage/settings.py`` calls these (and ``engage/embedded.py``, which starts the
embedded services before any Django process, ``load_dotenv``). Each helper fails loudly on a
value it cannot parse, so a typo in a deployment never silently falls back to a default.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# The bounds of every integer setting, as ``engage/settings.py`` declares them when it reads
# each one (``env_int``): {name: (minimum, maximum or None)}. The setting of the same name
# is checked against them when a process starts (``engage/checks.py``, ``engage.E008``).
INTEGER_BOUNDS: dict[str, tuple[int, int | None]] = {}
# The level names ``ENGAGE_LOG_LEVEL`` may hold (upper case), as ``logging`` knows them.
LOG_LEVELS = frozenset(logging.getLevelNamesMapping())


def load_dotenv(path: Path) -> None:
    """Put the variables of the dotenv file ``path`` (``NAME=value`` lines, django-environ's
    syntax) into ``os.environ``, except those the process environment already has: the
    environment wins. No file, nothing to do."""
    if path.is_file():
        import environ

        environ.Env.read_env(path, overwrite=False)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    """An integer; ``minimum`` and ``maximum`` (inclusive) are declared here, once, and
    recorded in ``INTEGER_BOUNDS`` for the start-up check, which names the variable and its
    range (a value out of range is not refused here, so the check can list every problem)."""
    if not (minimum <= default and (maximum is None or default <= maximum)):
        raise ValueError(f"{name}: the default {default} is outside its own bounds")
    INTEGER_BOUNDS[name] = (minimum, maximum)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, default: Path, *, base: Path) -> Path:
    """A directory or file path; a relative one is taken relative to ``base`` (the project
    root), so ``ENGAGE_VAR_DIR=var`` means the same folder from any working directory."""
    raw = os.environ.get(name, "").strip()
    path = Path(raw) if raw else default
    return path if path.is_absolute() else base / path


def database_from_url(url: str) -> dict:
    """Turn ``postgresql://user:pass@host:port/db?host=/socket/dir&sslmode=require`` into a
    Django DATABASES entry. Query parameters other than ``host`` are libpq connection
    parameters (``sslmode``, ``sslrootcert``, ``connect_timeout``, ``options``...) and are
    kept as ``OPTIONS``; ``engage/checks.py`` refuses names libpq does not know."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgresql:// URL, got {parts.scheme!r}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    host = options.pop("host", None) or parts.hostname or ""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "engage",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }
