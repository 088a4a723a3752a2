"""Shared fixtures. Tests that touch storage use the real PostgreSQL and Redis named by
DATABASE_URL / REDIS_URL (scripts/test sets them, embedded or not).

Keys: the test session uses the configured secret and tracking keys (the environment,
``.env``, or the ones scripts/test keeps under ``var/``); when there are none, or the start-up
checks would refuse them (``pytest`` run directly on a fresh clone), it makes random ones for
this session, never a constant, and puts them in the environment for the processes tests
start (workers, gunicorn).
"""

from __future__ import annotations

import logging
import os

import pytest
from django.conf import settings as django_settings

from engage.keys import new_secret_key, new_tracking_key, secret_key_problem, tracking_secret_problem
from tests.helpers import UNFLUSHED_TABLES

#: The console's browser fixtures (``browser_page``, ``staff_user``).
pytest_plugins = ["tests.browser"]


def _usable_tracking_keys(entries: list[str]) -> bool:
    """Keys the start-up checks accept, so the processes tests start (workers, gunicorn) run."""
    secrets_ = [str(entry).partition(":")[2] for entry in entries]
    return bool(secrets_) and all(tracking_secret_problem(secret) is None for secret in secrets_)


def _session_keys() -> None:
    if not _usable_tracking_keys(django_settings.ENGAGE_TRACKING_KEYS):  # (this first access loads the settings)
        django_settings.ENGAGE_TRACKING_KEYS = [new_tracking_key()]
    if secret_key_problem(django_settings._wrapped.SECRET_KEY):  # the raw value: reading "" raises
        django_settings.SECRET_KEY = new_secret_key()
    os.environ["ENGAGE_SECRET_KEY"] = django_settings.SECRET_KEY
    os.environ["ENGAGE_TRACKING_KEYS"] = ",".join(django_settings.ENGAGE_TRACKING_KEYS)


_session_keys()


def _session_spool() -> None:
    """The hit log and spool of this test session (and of the processes its tests start) in a
    directory of its own: never the checkout's ``var/spool``, whose files a development run
    would replay into its own stream (and this session into its streams)."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="engage-test-spool-")
    django_settings.ENGAGE_EVENT_SPOOL_DIR = directory
    os.environ["ENGAGE_EVENT_SPOOL_DIR"] = directory


_session_spool()

# aiosmtpd logs every command line and address at INFO, as the client sent them: an address
# with a non-UTF-8 byte holds a lone surrogate, which pytest-xdist cannot send back from a
# worker (a test's captured log goes with its report): the worker crashed, the run ended with
# an internal error. ``manage.py smtp_listen`` keeps that logger at WARNING; so do the tests.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def _xdist_worker_apart() -> None:
    """Under pytest-xdist (scripts/test runs the suite on every core: ``-n``), each worker
    its own Redis db and its own share of ``ENGAGE_TEST_SMTP_PORTS``, in this process and the
    processes its tests start: the throttle counters one test clears, the Celery queue
    another counts and the event stream a third reads are not the other worker's. The test
    database is pytest-django's own per worker (``test_<name>_gw1``). Worker ``gw<n>``
    takes Redis db ``n + 1`` (1-8; 9-15 are tests/tracking's and tests/e2e's, which tests/e2e
    claims while a test runs: a worker on one of them saw its Celery tasks taken by the
    other worker's e2e worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if not worker.startswith("gw") or count < 2:
        return
    from urllib.parse import urlsplit, urlunsplit

    index = int(worker[2:])
    url = urlunsplit(urlsplit(django_settings.REDIS_URL)._replace(path=f"/{1 + index % 8}"))
    os.environ["REDIS_URL"] = django_settings.REDIS_URL = django_settings.CELERY_BROKER_URL = url
    django_settings.CACHES["default"]["LOCATION"] = url
    first, _, last = os.environ.get("ENGAGE_TEST_SMTP_PORTS", "2600-2699").partition("-")
    share = (int(last) - int(first) + 1) // count
    start = int(first) + index * share
    os.environ["ENGAGE_TEST_SMTP_PORTS"] = f"{start}-{start + share - 1}"


_xdist_worker_apart()


@pytest.fixture(autouse=True)
def hit_log_shipped(settings):
    """What a test's tracking hits wrote to this process's hit log (``tracking.hitlog``) is
    shipped at its end, under its own settings (its stream, its Redis), never into a later
    test's stream."""
    yield
    from tracking.hitlog import hits_flush

    hits_flush()


@pytest.fixture
def make_key(db):
    """Create an API key with the given grants; returns the raw key."""
    from api_keys.services import api_key_create

    def make(*grants: str, label: str = "test") -> str:
        from api_keys.grants import ALL_GRANTS

        _key, raw = api_key_create(label=label, grants=list(grants) if grants else list(ALL_GRANTS))
        return raw

    return make


@pytest.fixture
def api(make_key):
    """An API client authenticated with a key holding every grant."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=make_key())
    return client


@pytest.fixture
def api_with(make_key):
    """Factory: an API client whose key holds only the given grants."""
    from rest_framework.test import APIClient

    def make(*grants: str):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=make_key(*grants) if grants else "")
        return client

    return make


@pytest.fixture(autouse=True)
def _clear_throttle_cache(request):
    """Forget API rate-limit and test-send counters between tests, and nothing else: Redis also
    holds the Celery queue and the event buffer, so never FLUSHDB here. (Test sends are
    counted per user id, which the next test's user can have again within the minute.)"""
    if "db" in request.fixturenames or "api" in request.fixturenames:
        from django.core.cache import cache

        client = cache._cache.get_client()
        keys = [key for pattern in ("*throttle_api_key*", "*console:test-sends:*")
                for key in client.scan_iter(match=pattern, count=1000)]  # fmt: skip
        if keys:
            client.delete(*keys)
    yield


@pytest.fixture(autouse=True)
def _prepared_transmissions_forgotten():
    """This process's prepared transmissions (``transmissions.generation.prepared_for``,
    cached by id) are forgotten before each test: a test database emptied with its identity
    sequences restarted gives the next test's transmission an id an earlier test's had, and
    an SMTP injection was sent as that earlier REST transmission (under pytest-xdist, where a
    worker runs another mix of files: no ``recv_method``, no ``Cc``)."""
    from transmissions.generation import prepared_cache_clear

    prepared_cache_clear()
    yield


@pytest.fixture
def relay(settings):
    """A running in-process relay (tests/transmissions/relay.py); ENGAGE_RELAY_URL points at it."""
    from tests.transmissions.relay import Relay
    from transmissions.delivery import relay_reset

    server = Relay().start()
    settings.ENGAGE_RELAY_URL = server.url
    relay_reset()
    yield server
    relay_reset()
    server.stop()


@pytest.fixture(autouse=True)
def _unflushed_tables_emptied(request):
    """After a test that commits (``transactional_db``, ``live_server``, ``django_db(transaction=True)``),
    empty :data:`UNFLUSHED_TABLES`, as Django's flush empties the others: events one test
    landed were found by the next one's queries (CI: five bounces, 71 events for 1)."""
    yield
    marker = request.node.get_closest_marker("django_db")
    committing = {"transactional_db", "live_server"} & set(request.fixturenames) or (
        marker is not None and marker.kwargs.get("transaction")
    )
    if not committing:
        return
    from django.db import connection

    with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(UNFLUSHED_TABLES)}")
