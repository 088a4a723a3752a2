"""Engage's two secrets: Django's ``SECRET_KEY`` (sessions, CSRF, password resets) and the
tracking keys that sign every open, click and unsubscribe link (``mailcore/tokens.py``).

Pure (standard library only): settings, the embedded default and the management commands
share these helpers. Engage never falls back to a constant: a secret is either configured
(``ENGAGE_SECRET_KEY``, ``ENGAGE_TRACKING_KEYS``), or generated at random by the first start
of ``scripts/run`` / ``scripts/test`` and kept under ``ENGAGE_VAR_DIR`` (files of mode 0600),
or missing, and then every process refuses to start (``engage/checks.py``).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

SECRET_KEY_FILE = "secret-key"
TRACKING_KEYS_FILE = "tracking-keys"
# Django's own deploy check asks for 50 characters; generated keys have 64.
SECRET_KEY_MIN_LENGTH = 50
# Tracking secrets: generated ones have 43 characters (256 bits); new keys need 32. A random
# secret of 16-31 characters (the floor before issue 10) still signs and verifies, with a
# start-up warning to rotate; below 16 nothing signs (``tracking.signing.tracking_keys``).
TRACKING_SECRET_MIN_LENGTH = 32
TRACKING_SECRET_FLOOR = 16
# Fewer distinct characters than this is not a secret (Django's SECRET_KEY check uses 5 too).
MIN_DISTINCT_CHARACTERS = 5

MAKE_SECRET_KEY = ".venv/bin/python manage.py generate_secret_key"
MAKE_TRACKING_KEY = ".venv/bin/python manage.py generate_tracking_key"

# What people write where a secret should be: words of six letters or more anywhere, ``xxxx``
# between separators, template syntax (``<...>``, ``${NAME}``, ``{{ x }}``), and values made
# of words joined by ``-``, ``_`` or ``.`` (``your-tracking-key-goes-here``, ``Your_Key_Here``;
# a passphrase of random words separated by spaces is a secret and passes).
# Measured on a million random 43-character URL-safe keys and 300,000 Django-style
# 50-character keys: none matches (hex and URL-safe alphabets hold none of ``<>${}``);
# generated keys are drawn again if one did.
_PLACEHOLDER = re.compile(
    r"change|example|secret|passw(?:or)?d|placeholder|replace|insecure|generate|sample"
    r"|(?:^|[\W_])x{4,}(?:[\W_]|$)"
    r"|^<.*>$|^\$\{|\$\{[A-Za-z_]\w*\}|\{\{.*\}\}"
    r"|(?-i:^(?:[A-Z]?[a-z]+|[A-Z]+)(?:[-_.](?:[A-Z]?[a-z]+|[A-Z]+)){2,}$)",
    re.IGNORECASE | re.DOTALL,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LITERAL_JOIN = re.compile(r"[\"']\s*\n\s*[rRbBuUfF]{0,2}[\"']")

# "Engage's own files": what a clone, the image (Dockerfile: COPY . .) and the docs hold.
# Read at check time, not from a committed list, so a literal added tomorrow is covered
# without regenerating anything; it only runs when a process starts (about 20 ms for the
# whole tree, measured; tests/project/test_secrets.py checks it skips .venv, var and caches). ``.env`` and ``var/``
# hold the deployment's own keys and are never read.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_SCANNED_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".cfg", ".ini", ".sh", ".html", ".json"}
# and by name: scripts/run, scripts/test, scripts/lock, scripts/Procfile, .ci/run, bench/run
_SCANNED_NAMES = {".env.example", "Dockerfile", ".gitignore", ".dockerignore", "run", "test", "lock", "Procfile"}
_SKIPPED_DIRS = {".git", ".venv", "venv", "var", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis",
                 ".ruff_cache", ".mypy_cache", "artifacts"}  # fmt: skip


def _random_until_strong(make: Callable[[], str]) -> str:
    while True:
        value = make()
        if _shape_problem(value) is None:
            return value


def new_secret_key() -> str:
    """A random ``SECRET_KEY``: 64 URL-safe characters (384 bits)."""
    return _random_until_strong(lambda: secrets.token_urlsafe(48))


def new_tracking_key(key_id: int = 1) -> str:
    """A random ``ENGAGE_TRACKING_KEYS`` entry ``"<key_id>:<secret>"``: 43 URL-safe
    characters (256 bits), over the 32 ``tracking_secret_problem`` asks of new keys."""
    if not 0 <= key_id <= 255:
        raise ValueError("key id must be in 0-255")
    return f"{key_id}:{_random_until_strong(lambda: secrets.token_urlsafe(32))}"


def project_files_containing(values: Iterable[str], root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``{value: path}`` for each of ``values`` found in Engage's own files (the path of the
    first file holding it, relative to ``root``), in one pass over them. Files: ``*.py``,
    ``*.md``, ``*.yml``/``*.yaml``, ``*.toml``, ``*.txt`` and the like, ``.env.example``,
    ``Dockerfile`` and the scripts, outside ``.git``, ``.venv``, ``var`` and caches. A value
    counts when it, or its backslash-escaped form (as a literal holding a newline or a quote
    is written), is a substring of a file, or of a Python file with its implicitly
    concatenated literals joined: a key in a literal, a comment, a doc or a ``NAME=value``
    line."""
    forms = {value: _written_forms(value) for value in values if value}
    found: dict[str, str] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name not in _SKIPPED_DIRS)
        for name in sorted(files):
            if not (os.path.splitext(name)[1] in _SCANNED_SUFFIXES or name in _SCANNED_NAMES):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as source:
                    text = source.read()
            except OSError:
                continue
            if name.endswith(".py"):
                text += "\0" + _joined_literals(text)
            for value in [value for value in forms if value not in found]:
                if any(form in text for form in forms[value]):
                    found[value] = os.path.relpath(path, root)
            if len(found) == len(forms):
                return found
    return found


def _written_forms(value: str) -> set[str]:
    """``value`` as it may be written in a file: as is, and backslash-escaped as a Python
    literal writes a newline, a backslash or its own quote character (non-ASCII letters
    escaped, or kept as they are)."""
    forms = {value}
    # Escaped to ASCII (``\\xeb``), and escaped with printable non-ASCII kept as written (``ë``).
    ascii_escaped = value.encode("unicode_escape").decode("ascii")
    kept = "".join(
        c if ord(c) > 0x7F and c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value
    )
    for escaped in (ascii_escaped, kept):
        forms |= {escaped, escaped.replace('"', '\\"'), escaped.replace("'", "\\'")}
    return forms


def _joined_literals(source: str) -> str:
    """Python source with adjacent string literals on consecutive lines joined, as is and with
    ``{{`` / ``}}`` undone, as the interpreter makes ``r"ab"\\n    rf"c{{1}}"`` into ``abc{1}``
    (reading every literal with ``ast`` instead would take ~0.5 s)."""
    joined = _LITERAL_JOIN.sub("", source)
    # Both readings: an f-string's ``{{`` is one brace, a plain literal's (JSON ending ``}}``) two.
    return joined + "\0" + joined.replace("{{", "{").replace("}}", "}")


def project_file_containing(value: str, root: Path = PROJECT_ROOT) -> str | None:
    """The path of the first of Engage's own files that holds ``value``, or None
    (``project_files_containing``)."""
    return project_files_containing([value], root).get(value)


def _too_repetitive(value: str) -> bool:
    """Fewer than ``MIN_DISTINCT_CHARACTERS`` distinct characters, or one shorter string
    repeated (``abcabcabc``, ``changeme-changeme-ch``): a random string of 16 characters or
    more is either with a probability below 1e-9."""
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return True
    return any(value[period:] == value[:-period] for period in range(1, len(value) // 2 + 1))


def _shape_problem(value: str) -> str | None:
    """What the value itself shows (no file read): a placeholder, a control character (a
    line break or a tab pasted with it), or too repetitive."""
    if _PLACEHOLDER.search(value):
        return "is a placeholder"
    if _CONTROL.search(value):
        return "contains a control character (a line break, a tab...)"
    if _too_repetitive(value):
        return f"is too repetitive (fewer than {MIN_DISTINCT_CHARACTERS} distinct characters, or a string repeated)"
    return None


def secret_problem(value: str, *, min_length: int) -> str | None:
    """The one rule every secret follows (the end of a sentence saying why ``value`` may not
    be one, or None): not a placeholder (words such as ``change``, ``example``, ``secret``,
    ``password``, ``xxxx``; ``<...>``, ``${...}``, ``{{...}}``), at least ``min_length``
    characters, no control character, not too repetitive, and not a string found
    in Engage's own files (anyone with the source could sign with it;
    ``project_files_containing``). What base64, hex and URL-safe generators make passes,
    but for a chance below 1e-6 (``_PLACEHOLDER``)."""
    if _PLACEHOLDER.search(value):
        return "is a placeholder"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    problem = _shape_problem(value)
    if problem is not None:
        return problem
    where = project_file_containing(value)
    if where is not None:
        return f"appears in Engage's own files ({where}): anyone with the source knows it"
    return None


def secret_key_problem(value: str) -> str | None:
    """Why ``value`` cannot be the ``SECRET_KEY``, or None when it can: empty, Django's
    ``django-insecure-`` prefix, or failing ``secret_problem`` with 50 characters."""
    if not value:
        return "ENGAGE_SECRET_KEY is not set"
    if value.startswith("django-insecure-"):
        return "ENGAGE_SECRET_KEY is a placeholder"
    problem = secret_problem(value, min_length=SECRET_KEY_MIN_LENGTH)
    return None if problem is None else f"ENGAGE_SECRET_KEY {problem}"


def tracking_secret_problem(secret: str) -> str | None:
    """Why ``secret`` (the part after ``kid:``) may not sign or verify tracked links, or None:
    ``secret_problem`` with ``TRACKING_SECRET_FLOOR`` (16) characters. A secret of 16-31
    characters that passes is accepted, and ``tracking_secret_is_short`` says so (a start-up
    warning to rotate): keys deployed when 16 was the floor keep working if they are random,
    while everything ``new_tracking_key`` makes has 43."""
    return secret_problem(secret, min_length=TRACKING_SECRET_FLOOR)


def tracking_secret_is_short(secret: str) -> bool:
    """Shorter than the ``TRACKING_SECRET_MIN_LENGTH`` (32) characters new keys need."""
    return len(secret) < TRACKING_SECRET_MIN_LENGTH


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
