"""Fixtures of the crash/restart drills (issue 11): one private PostgreSQL for the session,
with the migrated schema kept as a template database, and per drill a :class:`Stack` (a
database cloned from the template, its own Redis, relay, gunicorns and Celery worker),
torn down even when the drill fails, its logs attached to the failure report.

The drills are marked ``drill`` and left out of any run whose ``-m`` does not name them
(pyproject.toml's addopts, and :func:`pytest_collection_modifyitems`); ``scripts/test`` runs
them in a step of their own: ``pytest -m drill tests/drills``.
``ENGAGE_DRILL_KEEP=1`` keeps the temporary directory (data and logs) for a look afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.drills import harness

# A drill that runs longer than this is stopped: every process is killed and the session
# interrupted (each wait has its own, shorter bound; this is for what nothing else catches).
DRILL_TIMEOUT = 240.0
_numbers = itertools.count(1)
# The relay (aiosmtpd) logs every connection at INFO: thousands of lines in a failure report.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def _manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([harness.PYTHON, "manage.py", *args], cwd=harness.ROOT, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip
    if done.returncode:
        raise harness.DrillError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # so teardown runs and stops every server


@pytest.fixture(scope="session")
def drill_pg():
    """The session's PostgreSQL (started), its keys, and the migrated template database."""
    previous = signal.signal(signal.SIGTERM, _sigterm)
    base = harness.new_base()
    keep = bool(os.environ.get("ENGAGE_DRILL_KEEP"))
    harness.reaper_start(base, keep=keep)
    logdir = base / "logs"
    logdir.mkdir()
    pg = harness.Postgres(base, logdir)
    try:
        pg.init()
        pg.start()
        plain = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "DATABASE_", "REDIS_", "DJANGO_"))}
        bare = {**plain, "ENGAGE_VAR_DIR": str(base / "keyless")}
        keys = {
            "ENGAGE_SECRET_KEY": _manage("generate_secret_key", env=bare),
            "ENGAGE_TRACKING_KEYS": _manage("generate_tracking_key", env=bare),
        }
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE drill_template")
        _manage("migrate", "--noinput", env={**plain, **keys, "ENGAGE_VAR_DIR": str(base / "keyless"),
                                             "DATABASE_URL": pg.url("drill_template"),
                                             "REDIS_URL": "redis://127.0.0.1:1/0"})  # fmt: skip
        yield type("DrillPG", (), {"pg": pg, "base": base, "keys": keys})
    finally:
        try:
            pg.stop("immediate")
        except Exception:
            pg.kill()
        harness.kill_everything()
        harness.reaper_stop()
        if keep:
            print(f"drills: kept {base}", file=sys.stderr)
        else:
            harness.remove(base)
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def stack(drill_pg, request):
    """A started :class:`harness.Stack` on a fresh copy of the migrated database."""
    number = next(_numbers)
    database = f"drill_{number}"
    base = drill_pg.base / database
    logdir = base / "logs"
    logdir.mkdir(parents=True)
    with drill_pg.pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {database} TEMPLATE drill_template")
    built = harness.Stack(drill_pg.pg, database, base, logdir, drill_pg.keys)
    request.node.drill_stack = built
    try:
        built.start()
        yield built
    finally:
        built.stop()


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Kill everything and interrupt the session if a drill outlives DRILL_TIMEOUT (by a
    signal to this process: its handler raises in the main thread, whatever it waits on)."""
    reason = f"{request.node.nodeid} ran over {DRILL_TIMEOUT:.0f} s: its processes were killed"

    def interrupt(signum, frame):
        raise KeyboardInterrupt(reason)

    def expire():
        harness.kill_everything()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(DRILL_TIMEOUT, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def pytest_collection_modifyitems(config, items):
    """Drills run only when ``-m`` names them: a ``-m`` of the command line replaces the
    addopts' ``not drill`` (``pytest -m "not slow"`` would select them), this does not."""
    if "drill" in (config.getoption("markexpr") or ""):
        return
    drills = [item for item in items if item.get_closest_marker("drill")]
    if drills:
        config.hook.pytest_deselected(items=drills)
        items[:] = [item for item in items if not item.get_closest_marker("drill")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    built = getattr(item, "drill_stack", None)
    if built is not None and report.failed:
        with contextlib.suppress(Exception):
            report.sections.append((f"drill logs ({report.when})", built.logs()))
