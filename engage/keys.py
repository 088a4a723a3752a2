"""Engage's two secrets: Django's ``SECRET_KEY`` (sessions, CSRF, password resets) and the
tracking keys that sign every open, click and unsubscribe link (``tracking/tokens.py``).

Pure (standard library only): settings, the embedded default and the management commands
share these helpers. Engage never falls back to a constant: a secret is either configured
(``ENGAGE_SECRET_KEY``, ``ENGAGE_TRACKING_KEYS``), or generated at random by the first start
of ``scripts/run`` / ``scripts/test`` and kept under ``ENGAGE_VAR_DIR`` (files of mode 0600),
or missing, and then every process refuses to start (``engage/checks.py``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret-key"
TRACKING_KEYS_FILE = "tracking-keys"
# Django's own deploy check asks for 50 characters; generated keys have 64.
SECRET_KEY_MIN_LENGTH = 50

MAKE_SECRET_KEY = "python manage.py generate_secret_key"
MAKE_TRACKING_KEY = "python manage.py generate_tracking_key"


def new_secret_key() -> str:
    """A random ``SECRET_KEY``: 64 URL-safe characters (384 bits)."""
    return secrets.token_urlsafe(48)


def new_tracking_key(key_id: int = 1) -> str:
    """A random ``ENGAGE_TRACKING_KEYS`` entry ``"<key_id>:<secret>"``: 43 URL-safe
    characters (256 bits), well over the 16 bytes ``tracking.tokens.TokenSigner`` needs."""
    if not 0 <= key_id <= 255:
        raise ValueError("key id must be in 0-255")
    return f"{key_id}:{secrets.token_urlsafe(32)}"


def secret_key_problem(value: str) -> str | None:
    """Why ``value`` cannot be the ``SECRET_KEY``, or None when it can: empty, shorter than
    50 characters, with fewer than 5 distinct characters, or a placeholder."""
    if not value:
        return "ENGAGE_SECRET_KEY is not set"
    if value.startswith(("${", "<", "django-insecure-")) or "change" in value.lower():
        return "ENGAGE_SECRET_KEY is a placeholder"
    if len(value) < SECRET_KEY_MIN_LENGTH or len(set(value)) < 5:
        return f"ENGAGE_SECRET_KEY is shorter than {SECRET_KEY_MIN_LENGTH} characters or too repetitive"
    return None


def read_key_file(path: Path) -> str:
    """The stripped first line of ``path``, or "" when it does not exist."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _write_once(path: Path, value: str) -> str:
    """Write ``value`` to ``path`` (mode 0600) unless the file exists; returns the kept value.
    Two first starts at once both end with the same value: the file appears whole (a
    hard link of a finished temporary file) and only one link succeeds."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink()
    return read_key_file(path)


def ensure_key_files(var: Path | str) -> tuple[str, str]:
    """The secret key and tracking key kept under ``var``, generated at random on the first
    call (files ``secret-key`` and ``tracking-keys``, mode 0600) and the same ever after."""
    var = Path(var)
    var.mkdir(parents=True, exist_ok=True)
    kept = []
    for name, make in ((SECRET_KEY_FILE, new_secret_key), (TRACKING_KEYS_FILE, new_tracking_key)):
        path = var / name
        kept.append(read_key_file(path) or _write_once(path, make()))
    return kept[0], kept[1]
