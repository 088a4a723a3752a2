"""No known secret ever signs anything (issue 10, Deliver 4): keys are configured or generated
at random and kept, every process refuses to start without them or with a malformed setting,
and a token signed with any value found in the source is a 404."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import os
import random
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from engage.keys import (
    TRACKING_SECRET_FLOOR,
    ensure_key_files,
    new_secret_key,
    new_tracking_key,
    project_files_containing,
    secret_key_problem,
    tracking_secret_problem,
)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "var", ".env", "__pycache__", ".pytest_cache", ".hypothesis",
                                     ".ruff_cache", "artifacts")  # fmt: skip


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh checkout of the project (no .env, no var/), as a newcomer has it."""
    copy = tmp_path / "engage"
    shutil.copytree(ROOT, copy, ignore=_NOT_COPIED)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def clean_env(**values: str) -> dict[str, str]:
    """The environment of a process with no Engage setting at all, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "DJANGO_")) and k not in
           {"DATABASE_URL", "REDIS_URL"}}  # fmt: skip
    env.update(values)
    return env


def run(project: Path, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def manage(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(project, PYTHON, "manage.py", *args, env=env)


def _set(dotenv: Path, name: str, value: str) -> None:
    """Set ``name`` in a .env file: its line replaced, or added when it has none."""
    text, found = re.subn(rf"^{name}=.*$", f"{name}={value}", dotenv.read_text(), flags=re.M)
    dotenv.write_text(text if found else f"{text.rstrip()}\n{name}={value}\n")


# --- a newcomer ---------------------------------------------------------------------------


@pytest.mark.slow
def test_newcomer_copying_env_example_is_told_exactly_what_to_set_and_then_it_works(project):
    shutil.copy(project / ".env.example", project / ".env")
    result = manage(project, "check", env=clean_env())
    assert result.returncode != 0
    errors = re.findall(r"\((engage\.E\d+|[\w.]+\.E\d+)\)", result.stderr)
    assert errors == ["engage.E001", "engage.E002"], result.stderr  # nothing else in .env.example is wrong
    assert "ENGAGE_SECRET_KEY is not set" in result.stderr and "python manage.py generate_secret_key" in result.stderr
    assert "ENGAGE_TRACKING_KEYS is not set" in result.stderr
    assert "python manage.py generate_tracking_key" in result.stderr

    # doing what the message says: the commands work without keys, and then so does the check
    secret = manage(project, "generate_secret_key", env=clean_env())
    tracking = manage(project, "generate_tracking_key", env=clean_env())
    assert secret.returncode == tracking.returncode == 0, (secret.stderr, tracking.stderr)
    _set(project / ".env", "ENGAGE_SECRET_KEY", secret.stdout.strip())
    _set(project / ".env", "ENGAGE_TRACKING_KEYS", tracking.stdout.strip())
    result = manage(project, "check", env=clean_env())
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_makemigrations_check_needs_no_keys(project):
    """A fresh checkout can check its migrations before any key exists; nothing is signed."""
    result = manage(project, "makemigrations", "--check", "--dry-run", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    assert "engage.E00" not in result.stderr


@pytest.mark.slow
def test_the_process_environment_wins_over_dotenv(project):
    shutil.copy(project / ".env.example", project / ".env")
    _set(project / ".env", "ENGAGE_SECRET_KEY", new_secret_key())
    _set(project / ".env", "ENGAGE_TRACKING_KEYS", new_tracking_key())
    _set(project / ".env", "ENGAGE_TRACKING_BASE_URL", "https://from-dotenv.example")
    show = "from django.conf import settings; print(settings.ENGAGE_TRACKING_BASE_URL, settings.SECRET_KEY)"
    env = clean_env(DJANGO_SETTINGS_MODULE="engage.settings")
    result = run(project, PYTHON, "-c", f"import django; django.setup(); {show}", env=env)
    assert result.stdout.split()[0] == "https://from-dotenv.example", result.stderr
    result = run(project, PYTHON, "-c", f"import django; django.setup(); {show}",
                 env={**env, "ENGAGE_TRACKING_BASE_URL": "https://from-env.example"})  # fmt: skip
    assert result.stdout.split()[0] == "https://from-env.example", result.stderr


def test_scripts_read_their_ports_from_dotenv_and_the_dev_urls_follow_them(project):
    """A newcomer who sets ENGAGE_PORT / ENGAGE_SINK_PORT in .env gets them, and .env.example
    pins no relay or tracking URL that would keep pointing at the old ports."""
    shutil.copy(project / ".env.example", project / ".env")
    _set(project / ".env", "ENGAGE_PORT", "8123")
    _set(project / ".env", "ENGAGE_TRACK_PORT", "8124")
    _set(project / ".env", "ENGAGE_SINK_PORT", "'1126'  # quoted, with a comment")
    script = (
        "source scripts/lib.sh; "
        'echo "$(env_or_dotenv ENGAGE_PORT 8000) $(env_or_dotenv ENGAGE_SINK_PORT 1025) '
        '$(env_or_dotenv ENGAGE_WEB_WORKERS 2) $(env_or_dotenv ENGAGE_TRACK_PORT 8001)"; '
        "env_default ENGAGE_RELAY_URL x; env_default ENGAGE_TRACKING_BASE_URL y; "
        'echo "${ENGAGE_RELAY_URL:-} ${ENGAGE_TRACKING_BASE_URL:-}"'
    )
    result = run(project, "bash", "-c", script, env=clean_env())
    assert result.stdout.split() == ["8123", "1126", "2", "8124", "x", "y"], result.stderr
    result = run(project, "bash", "-c", script, env=clean_env(ENGAGE_PORT="9000"))
    assert result.stdout.split()[0] == "9000"


@pytest.mark.slow
def test_generated_keys_pass_the_checks_and_differ_every_time(project):
    secrets_ = {manage(project, "generate_secret_key", env=clean_env()).stdout.strip() for _ in range(2)}
    keys = {manage(project, "generate_tracking_key", env=clean_env()).stdout.strip() for _ in range(2)}
    assert len(secrets_) == len(keys) == 2
    assert all(re.fullmatch(r"1:[A-Za-z0-9_-]{43}", key) for key in keys)
    rotation = manage(project, "generate_tracking_key", env=clean_env(ENGAGE_TRACKING_KEYS=new_tracking_key(4)))
    assert rotation.stdout.startswith("5:") and "append" in rotation.stderr


# --- processes refuse to start ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_every_process_refuses_to_start_without_keys_and_says_how_to_make_them(project):
    env = clean_env(DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL=os.environ["REDIS_URL"])
    bin_ = ROOT / ".venv/bin"
    processes = {
        "gunicorn": [str(bin_ / "gunicorn"), "engage.wsgi:application", "--bind", f"127.0.0.1:{_free_port()}",
                     "--worker-class", "gthread", "--workers", "1"],
        "worker": [str(bin_ / "celery"), "-A", "engage", "worker", "--queues", "refusal-test", "--concurrency", "1",
                   "--without-gossip", "--without-mingle"],
        "worker --beat": [str(bin_ / "celery"), "-A", "engage", "worker", "--beat", "--queues", "refusal-test",
                          "-s", str(project / "beat-schedule"), "--without-gossip", "--without-mingle"],
        "beat": [str(bin_ / "celery"), "-A", "engage", "beat", "-s", str(project / "beat-schedule")],
        "runserver": [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{_free_port()}"],
        "migrate": [PYTHON, "manage.py", "migrate", "--noinput"],
        "land_events": [PYTHON, "manage.py", "land_events"],
    }  # fmt: skip
    for name, command in processes.items():
        result = run(project, *command, env=env, timeout=60)  # the timeout only catches one that starts anyway
        output = result.stdout + result.stderr
        assert result.returncode != 0, (name, output[-2000:])
        assert "ENGAGE_SECRET_KEY is not set" in output and "generate_secret_key" in output, (name, output[-2000:])
        assert "ENGAGE_TRACKING_KEYS is not set" in output and "generate_tracking_key" in output, name


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("ENGAGE_TRACKING_KEYS", "1:change-me", "engage.E002"),  # what .env.example shipped
        ("ENGAGE_TRACKING_KEYS", "1:change-me-too", "engage.E002"),  # what docker-compose.yml shipped
        ("ENGAGE_TRACKING_KEYS", "just-a-long-secret-without-key-id", "engage.E002"),
        ("ENGAGE_TRACKING_KEYS", "1:0123456789abcdef01,1:0123456789abcdef02", "engage.E002"),
        ("ENGAGE_SECRET_KEY", "change-me", "engage.E001"),
        ("ENGAGE_SECRET_KEY", "too-short-for-a-secret", "engage.E001"),
        ("ENGAGE_TRACKING_BASE_URL", "track.example.com", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "https://track.example.com/engage", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "ftp://track.example.com", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "https://track.example.com:99999", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "http://a b", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "https://-track.example.com", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "https://track_1.example.com", "engage.E003"),
        ("ENGAGE_TRACKING_BASE_URL", "http://127.0.0.1:8000", None),
        ("ENGAGE_TRACKING_BASE_URL", "http://[::1]:8000", None),
        ("ENGAGE_RELAY_URL", "http://relay.example.com", "engage.E004"),
        ("ENGAGE_RELAY_URL", "smtp://", "engage.E004"),
        ("ENGAGE_RELAY_URL", "smtp://relay.example.com:notaport", "engage.E004"),
        ("DATABASE_URL", "postgresql://u@db.example.com/engage?sslmdoe=require", "engage.E005"),
        ("ENGAGE_WEBHOOK_ALLOWED_TARGETS", "127.0.0.1", None),  # a bare address is a /32: fine
        ("ENGAGE_WEBHOOK_ALLOWED_TARGETS", "hooks.lan", "engage.E006"),
        ("ENGAGE_WEBHOOK_ALLOWED_TARGETS", "10.0.0.0/8,127.0.0.1:99999", "engage.E006"),
        ("ENGAGE_API_RATE", "lots", "engage.E007"),  # was a 500 on every API request
        ("ENGAGE_API_RATE", "100/fortnight", "engage.E007"),
        ("ENGAGE_API_RATE", "0/minute", "engage.E007"),  # would be a 429 on every request
        ("ENGAGE_API_RATE", "", "engage.E007"),
        ("ENGAGE_API_RATE", "20/second", None),
        ("ENGAGE_MAX_REQUEST_BYTES", "-1", "engage.E008"),  # was a 413 "larger than -1 bytes" on every request
        ("ENGAGE_TRACKING_LINK_EXPIRY", "-5", "engage.E008"),
        ("ENGAGE_RETRY_MAX_ATTEMPTS", "-1", "engage.E008"),
        ("ENGAGE_SEND_BATCH_SIZE", "0", "engage.E008"),
        ("ENGAGE_SCHEDULER_INTERVAL", "86400", "engage.E008"),  # a maximum
        ("ENGAGE_START_TIME_MAX_SECONDS", str(10**12), "engage.E008"),  # past datetime's range
        ("ENGAGE_TASK_VISIBILITY_TIMEOUT", "0", "engage.E008"),
        ("ENGAGE_SEND_BATCH_SIZE", "1", None),
        ("ENGAGE_LIST_UNSUBSCRIBE_MAILTO", "a@b>, <https://evil", "engage.E009"),  # went into List-Unsubscribe
        ("ENGAGE_LIST_UNSUBSCRIBE_MAILTO", "mailto:unsubscribe@example.com", "engage.E009"),
        ("ENGAGE_LIST_UNSUBSCRIBE_MAILTO", "Unsub <unsubscribe@example.com>", "engage.E009"),
        ("ENGAGE_LIST_UNSUBSCRIBE_MAILTO", "unsubscribe@example.com", None),
        ("ENGAGE_ALLOWED_HOSTS", "https://api.example.com", "engage.E010"),
        ("ENGAGE_ALLOWED_HOSTS", "api.example.com:8000", "engage.E010"),
        ("ENGAGE_ALLOWED_HOSTS", "api.example.com,.example.com,127.0.0.1,[::1],localhost", None),
        ("ENGAGE_LOG_LEVEL", "verbose", "engage.E011"),
        ("ENGAGE_LOG_LEVEL", "warning", None),
        ("ENGAGE_EVENT_STREAM", "", "engage.E012"),
        ("ENGAGE_EVENT_STREAM", "engage events", "engage.E012"),
        ("ENGAGE_EVENT_GROUP", "landers\n", "engage.E012"),
        ("ENGAGE_EVENT_STREAM", "engage:e2e:events:0a1b", None),
        ("REDIS_URL", "http://127.0.0.1:6379/0", "engage.E013"),
        ("REDIS_URL", "redis://127.0.0.1:6379/db", "engage.E013"),
        ("REDIS_URL", "redis://a b:6379/0", "engage.E013"),
        ("REDIS_URL", "rediss://:pw@redis.example.com:6380/3", None),
    ],
)
def test_a_malformed_setting_is_a_start_up_error_naming_it(settings, monkeypatch, name, value, error):
    from django.core.checks import run_checks

    apply_setting(settings, monkeypatch, name, value)
    found = [message for message in run_checks(tags=["engage"]) if message.is_serious()]
    assert [message.id for message in found] == ([error] if error else [])
    if error:
        assert name in found[0].msg and found[0].hint


def apply_setting(settings, monkeypatch, name: str, value: str) -> None:
    """Set what ``engage/settings.py`` would make of ``name=value`` in the environment."""
    from engage.env import INTEGER_BOUNDS, database_from_url

    if name == "DATABASE_URL":
        monkeypatch.setitem(settings.DATABASES["default"], "OPTIONS", database_from_url(value)["OPTIONS"])
    elif name == "ENGAGE_SECRET_KEY":
        settings.SECRET_KEY = value
    elif name == "ENGAGE_API_RATE":
        rest = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **rest,
            "DEFAULT_THROTTLE_RATES": {**rest["DEFAULT_THROTTLE_RATES"], "api_key": value},
        }
    elif name == "ENGAGE_ALLOWED_HOSTS":
        settings.ALLOWED_HOSTS = value.split(",")
    elif name in INTEGER_BOUNDS:
        setattr(settings, name, int(value))
    else:
        listed = name in ("ENGAGE_TRACKING_KEYS", "ENGAGE_WEBHOOK_ALLOWED_TARGETS")
        setattr(settings, name, value.split(",") if listed else value)


def test_every_integer_setting_declares_its_range_and_the_defaults_pass():
    from django.conf import settings

    from engage.env import INTEGER_BOUNDS

    read = set(re.findall(r'env_int\(\s*"(\w+)"', (ROOT / "engage" / "settings.py").read_text()))
    assert read and read == set(INTEGER_BOUNDS)  # one table: every env_int, nothing else
    for name, (minimum, maximum) in INTEGER_BOUNDS.items():
        assert minimum <= getattr(settings, name) and (maximum is None or getattr(settings, name) <= maximum), name
    example = dict(re.findall(r"^(ENGAGE_\w+)=(\S*)$", (ROOT / ".env.example").read_text(), re.M))
    assert all(name in example for name in INTEGER_BOUNDS), "every integer setting is in .env.example"


@pytest.mark.slow
def test_settings_the_tester_broke_stop_manage_py_naming_each(project):
    env = clean_env(ENGAGE_SECRET_KEY=new_secret_key(), ENGAGE_TRACKING_KEYS=new_tracking_key(),
                    DATABASE_URL="postgresql://u@db.example.com/engage", REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    bad = {"ENGAGE_API_RATE": "lots", "ENGAGE_MAX_REQUEST_BYTES": "-1", "ENGAGE_TRACKING_BASE_URL": "http://a b",
           "ENGAGE_TRACKING_LINK_EXPIRY": "-5", "ENGAGE_RETRY_MAX_ATTEMPTS": "-1", "ENGAGE_SEND_BATCH_SIZE": "0",
           "ENGAGE_LIST_UNSUBSCRIBE_MAILTO": "a@b>, <https://evil", "ENGAGE_ALLOWED_HOSTS": "https://api.example.com",
           "ENGAGE_LOG_LEVEL": "verbose", "ENGAGE_EVENT_STREAM": "engage events"}  # fmt: skip
    result = manage(project, "check", env={**env, **bad})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr  # a bad log level no longer breaks logging before the checks run
    assert sorted(set(re.findall(r"\((engage\.E\d+)\)", result.stderr))) == [
        "engage.E003", "engage.E007", "engage.E008", "engage.E009", "engage.E010", "engage.E011", "engage.E012",
    ], result.stderr  # fmt: skip
    assert all(name in result.stderr for name in bad)
    assert result.stderr.count("(engage.E008)") == 4


@pytest.mark.slow
def test_malformed_settings_stop_manage_py_naming_each(project):
    env = clean_env(ENGAGE_SECRET_KEY=new_secret_key(), ENGAGE_TRACKING_KEYS=new_tracking_key(),
                    DATABASE_URL="postgresql://u@db.example.com/engage?sslmode=require", REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    assert manage(project, "check", env=env).returncode == 0
    bad = {"ENGAGE_SECRET_KEY": "change-me", "ENGAGE_TRACKING_KEYS": "1:change-me-too",
           "ENGAGE_TRACKING_BASE_URL": "track.example.com", "ENGAGE_RELAY_URL": "http://relay.example.com",
           "DATABASE_URL": "postgresql://u@db.example.com/engage?sslmdoe=require"}  # fmt: skip
    result = manage(project, "check", env={**env, **bad})
    assert result.returncode != 0
    assert re.findall(r"\((engage\.E\d+)\)", result.stderr) == [f"engage.E00{n}" for n in range(1, 6)], result.stderr
    assert all(name in result.stderr for name in bad)


def test_database_url_keeps_libpq_options():
    from engage.env import database_from_url

    database = database_from_url(
        "postgresql://u:p%40ss@db.example.com:6432/engage?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=5"
    )
    assert database["OPTIONS"] == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem", "connect_timeout": "5"}
    assert (database["HOST"], database["PORT"], database["PASSWORD"]) == ("db.example.com", "6432", "p@ss")
    socket_database = database_from_url("postgresql://postgres@/engage?host=/var/run/pg")
    assert socket_database["HOST"] == "/var/run/pg" and socket_database["OPTIONS"] == {}


# --- weak and known keys (the security tester's F4) -------------------------------------------

# Random, and committed: this file holds them, so they are known and the checks refuse them.
COMMITTED_TRACKING_SECRET = "d9ATmNhEqf8EQdzdCOHZ74IquFa4teIyYVwmkbBtlbg"
COMMITTED_SECRET_KEY = "v4WRf_okYdE4o5NOvXwOOLMT763EO3ijLZ8gnLOs9ND5bc1XL0aHLSdjgFBffxEh"


def _engage_messages(*ids_from: str):
    from django.core.checks import run_checks

    return [message for message in run_checks(tags=["engage"]) if message.id.startswith(ids_from)]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1:aaaaaaaaaaaaaaaa", "too repetitive"),
        ("1:changeme-changeme-changeme", "placeholder"),
        ("1:<generate-with-manage.py>", "placeholder"),
        ("1:${ENGAGE_TRACKING_KEY}xxxxxxx", "placeholder"),
        ("1:first-secret-0123456789", "placeholder"),  # tests/tracking/test_events.py: it signed a phishing redirect
        ("1:your-tracking-key-goes-here", "placeholder"),
        ("1:Your_Tracking_Key_Goes_Here", "placeholder"),
        ("1:Zq-xxxx-xxxx-xxxx-xxxx", "placeholder"),
        ("1:abcdefgh12abcdefgh12abcdefgh12", "too repetitive"),
        ("1:ab12ab12ab12ab12ab12ab12ab12ab12ab", "too repetitive"),
        ("1:Zk3vQ8\tmR2pL7wX9nT4", "a control character"),
        ("1:0123456789abcdef01", "appears in Engage's own files ("),
        (f"1:{COMMITTED_TRACKING_SECRET}", "Engage's own files (tests/project/test_secrets.py)"),
        ("1:short-Zk3vQ8m", "shorter than 16"),
    ],
)
def test_a_weak_placeholder_or_known_tracking_key_is_a_start_up_error(settings, value, why):
    settings.ENGAGE_TRACKING_KEYS = [value]
    found = _engage_messages("engage.E002", "engage.W001")
    assert [message.id for message in found] == ["engage.E002"]
    assert found[0].msg.startswith("ENGAGE_TRACKING_KEYS: key 1 ") and why in found[0].msg
    assert "python manage.py generate_tracking_key" in found[0].hint


def test_a_known_key_is_refused_among_verifying_keys_too(settings):
    """Any configured key verifies, so a forger needs only one of them."""
    settings.ENGAGE_TRACKING_KEYS = ["3:first-secret-0123456789", new_tracking_key(4)]
    assert [(m.id, m.msg.split(":")[1].split()[:2]) for m in _engage_messages("engage.E002", "engage.W001")] == [
        ("engage.E002", ["key", "3"])
    ]


def test_a_random_passphrase_is_a_secret(settings):
    words = " ".join(random.Random(7).sample(["orbit", "lemon", "quartz", "tundra", "velvet", "nimbus", "fjord"], 6))
    settings.ENGAGE_TRACKING_KEYS = [f"1:{words}"]
    assert _engage_messages("engage.E002", "engage.W001") == []


@pytest.mark.slow
def test_generated_tracking_keys_pass_without_a_warning(settings):
    for key_id in range(20):
        settings.ENGAGE_TRACKING_KEYS = [new_tracking_key(key_id), new_tracking_key(key_id + 100)]
        assert _engage_messages("engage.E002", "engage.W001") == []


@pytest.mark.parametrize("make", [lambda: secrets.token_hex(8), lambda: secrets.token_urlsafe(18),
                                  lambda: str(uuid.uuid4()).replace("-", "")[:24]])  # fmt: skip
def test_a_random_key_deployed_when_16_characters_sufficed_still_starts_with_a_warning(settings, make):
    settings.ENGAGE_TRACKING_KEYS = [f"1:{make()}"]
    found = _engage_messages("engage.E002", "engage.W001")
    assert [message.id for message in found] == ["engage.W001"] and not found[0].is_serious()
    assert "32 characters" in found[0].msg and "generate_tracking_key" in found[0].hint


def test_a_secret_key_found_in_the_source_is_refused(settings):
    settings.SECRET_KEY = COMMITTED_SECRET_KEY
    found = _engage_messages("engage.E001")
    assert [message.id for message in found] == ["engage.E001"]
    assert "appears in Engage's own files (tests/project/test_secrets.py)" in found[0].msg
    settings.SECRET_KEY = new_secret_key()
    assert _engage_messages("engage.E001") == []


@pytest.mark.slow
def test_every_value_in_the_source_is_refused_as_a_tracking_secret_and_as_a_secret_key():
    values = source_values() | {"engage-development-secret-do-not-use-in-production"}
    candidates = set(values)
    for value in values:  # kid:secret values as written, and their secret
        kid, sep, secret = value.partition(":")
        if sep and kid.strip().isdigit():
            candidates.add(secret)
    long = {value for value in candidates if len(value) >= TRACKING_SECRET_FLOOR}
    found = project_files_containing(long)
    assert len(found) > 1000
    for value in candidates - found.keys():  # short ones, and literals written otherwise (concatenated, escaped)
        assert tracking_secret_problem(value) is not None, value
        assert secret_key_problem(value) is not None, value
    for value in random.Random(10).sample(sorted(found), 50):  # the whole rule, for some of the rest
        assert tracking_secret_problem(value) is not None and secret_key_problem(value) is not None, value


def test_the_scan_reads_engages_own_files_and_never_the_virtualenv_var_git_or_caches(tmp_path):
    """What keeps the scan at every process start cheap (its speed is no test's to measure):
    it reads the project's sources and docs, not the installed packages, the deployment's
    own keys, the repository's objects or caches, nor files of other kinds."""
    value = secrets.token_urlsafe(32)
    for skipped in (".venv/lib/site.py", "venv/x.py", "var/keys/tracking.txt", ".git/config.txt", "node_modules/a.json",
                    "__pycache__/m.py", ".pytest_cache/v.txt", ".hypothesis/e.txt", ".ruff_cache/c.txt",
                    ".mypy_cache/c.json", "artifacts/report.md", ".env", "engage/module.pyc", "data.csv"):  # fmt: skip
        path = tmp_path / skipped
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"KEY = {value!r}\n")
    assert project_files_containing([value], root=tmp_path) == {}
    (tmp_path / "engage" / "keys.py").write_text(f"KEY = {value!r}\n")
    assert project_files_containing([value], root=tmp_path) == {value: "engage/keys.py"}


@pytest.mark.slow
def test_a_process_given_a_key_from_the_source_refuses_to_start(project):
    env = clean_env(ENGAGE_SECRET_KEY=new_secret_key(), ENGAGE_TRACKING_KEYS="1:first-secret-0123456789",
                    DATABASE_URL="postgresql://u@db.example.com/engage", REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    result = manage(project, "check", env=env)
    assert result.returncode != 0
    assert re.findall(r"\((engage\.[EW]\d+)\)", result.stderr) == ["engage.E002"], result.stderr
    assert "ENGAGE_TRACKING_KEYS: key 1" in result.stderr and "generate_tracking_key" in result.stderr


# --- the embedded default -------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_default_generates_its_keys_once_private_and_keeps_them(project):
    env = clean_env(DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL=os.environ["REDIS_URL"])
    first = run(project, PYTHON, "-m", "engage.embedded", "env", env=env)
    assert first.returncode == 0, first.stderr
    var = project / "var"
    kept = {}
    for name in ("secret-key", "tracking-keys"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600
        kept[name] = (var / name).read_text()
    assert run(project, PYTHON, "-m", "engage.embedded", "env", env=env).returncode == 0
    assert {name: (var / name).read_text() for name in kept} == kept  # a restart keeps them
    assert manage(project, "check", env=env).returncode == 0  # and settings use them
    show = (
        "from django.conf import settings; print(settings.SECRET_KEY); print(','.join(settings.ENGAGE_TRACKING_KEYS))"
    )
    shown = run(project, PYTHON, "-c", f"import django; django.setup(); {show}",
                env={**env, "DJANGO_SETTINGS_MODULE": "engage.settings"})  # fmt: skip
    assert shown.stdout.split() == [kept["secret-key"].strip(), kept["tracking-keys"].strip()], shown.stderr


def test_key_files_made_at_the_same_time_end_the_same(tmp_path):
    assert len({ensure_key_files(tmp_path) for _ in range(3)}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret-key", "tracking-keys"]  # no temporary left


# --- forged tokens ---------------------------------------------------------------------------

# "vendor": third-party files kept byte for byte as released (analytics/static/analytics/vendor/,
# checked by tests/analytics/test_vendor.py), like node_modules: their words are not Engage's.
_SKIP_DIRS = {".git", ".venv", "var", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", "node_modules",
              "vendor"}  # fmt: skip


def source_values() -> set[str]:
    """Every string literal of the project's Python source, and every value in its
    configuration files and docs (``NAME=value``, ``NAME: value``, words of 16+ characters)."""
    values: set[str] = set()
    for path in ROOT.rglob("*"):
        if _SKIP_DIRS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes) and node.value:
                    values.add(node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value)
        elif (
            path.suffix in {".example", ".yml", ".yaml", ".md", ".toml", ".txt", ".sh", ""}
            and path.stat().st_size < 10**6
        ):
            text = path.read_text(errors="replace")
            values.update(m.strip("\"' ") for m in re.findall(r"^\s*[\w.-]+\s*[=:]\s*(.+)$", text, re.M))
            values.update(re.findall(r"[\w:.-]{16,}", text))
    return values


def _forge(token: str, key_id: int, secret: bytes) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[2] = key_id
    body = bytes(raw[:-16])
    tag = hmac.new(secret, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode()


def _candidates(value: str, key_ids: set[int]):
    """(key id, secret) pairs a forger would try with ``value``: it as the secret under every
    configured key id, and a ``kid:secret`` value as written, and its secret under every id."""
    for key_id in key_ids:
        yield key_id, value.encode("utf-8", "surrogatepass")
    kid, sep, secret = value.partition(":")
    if sep and kid.strip().isdigit() and int(kid) < 256:
        yield int(kid), secret.encode("utf-8", "surrogatepass")
        for key_id in key_ids:
            yield key_id, secret.encode("utf-8", "surrogatepass")


@pytest.fixture(params=["test session keys", "embedded default keys", "two keys in rotation"])
def configuration(request, settings, tmp_path):
    if request.param == "embedded default keys":
        settings.ENGAGE_TRACKING_KEYS = [ensure_key_files(tmp_path)[1]]
    elif request.param == "two keys in rotation":
        settings.ENGAGE_TRACKING_KEYS = [new_tracking_key(1), new_tracking_key(2)]
    return request.param


@pytest.mark.slow
def test_a_token_signed_with_any_value_in_the_source_is_a_404(configuration, client, settings):
    from mailcore.tokens import InvalidToken
    from tracking.signing import tracking_keys, tracking_signer

    signer = tracking_signer()
    tokens = signer.for_message(message_id="0000632c8b54d53f0a00", transmission_id="1", rcpt_to="a@example.com",
                                issued_at=int(time.time()))  # fmt: skip
    genuine = {
        "click": tokens.click("https://evil.example/", "x"),
        "open": tokens.open(),
        "unsubscribe": tokens.open("unsubscribe"),
    }
    key_ids = {kid for kid, _ in tracking_keys()}
    # The harness forges correctly: with the real key the forgery verifies.
    real_id, real_secret = tracking_keys()[0]
    now, max_age = int(time.time()), settings.ENGAGE_TRACKING_LINK_EXPIRY
    assert signer.decode(_forge(genuine["click"], real_id, real_secret), now=now, max_age=max_age).target_url

    # This file is source too: the constant settings.py fell back to before issue 10 is tried.
    values = source_values() | {"engage-development-secret-do-not-use-in-production"}
    assert len(values) > 1000
    tried = 0
    for value in values:
        for key_id, secret in _candidates(value, key_ids):
            token = _forge(genuine["click"], key_id, secret)
            tried += 1
            with pytest.raises(InvalidToken):
                signer.decode(token, now=now, max_age=max_age)
    assert tried >= len(values)
    # Through the endpoints, the values that look like keys or secrets
    keylike = [v for v in values if re.search(r"secret|key|change|^\d+:", v, re.I) and len(v) < 200]
    for value in keylike:
        for key_id, secret in _candidates(value, key_ids):
            assert client.get(f"/f/{_forge(genuine['click'], key_id, secret)}").status_code == 404, value
            assert client.get(f"/q/{_forge(genuine['open'], key_id, secret)}").status_code == 404, value
            assert client.get(f"/u/{_forge(genuine['unsubscribe'], key_id, secret)}").status_code == 404, value


def test_no_setting_means_no_signer_and_no_secret(settings):
    from tracking.signing import tracking_signer

    settings.ENGAGE_TRACKING_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        tracking_signer()
    settings.SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        settings.SECRET_KEY  # noqa: B018 - Django refuses an empty secret rather than using one
