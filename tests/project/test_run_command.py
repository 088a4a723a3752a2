"""The README's run command on the embedded default: no DATABASE_URL/REDIS_URL, yet the API answers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_run_command_on_embedded_default_serves_the_api_with_the_printed_key(tmp_path):
    unset = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "ENGAGE_SECRET_KEY", "ENGAGE_TRACKING_KEYS"}
    env = {k: v for k, v in os.environ.items() if k not in unset}  # a newcomer's: no URLs, no keys
    port, sink_port = free_port(), free_port()
    env.update(ENGAGE_VAR_DIR=str(tmp_path / "var"), ENGAGE_PORT=str(port), ENGAGE_SINK_PORT=str(sink_port),
               ENGAGE_SINK_DIR=str(tmp_path / "sink"), ENGAGE_WEB_WORKERS="1")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        key, deadline = None, time.monotonic() + 180
        while time.monotonic() < deadline:
            text = log.read_text()
            key = key or (re.search(r"demo API key \(shown once, keep it\): ([0-9a-f]{40})", text) or [None, None])[1]
            if key:
                try:
                    response = requests.get(f"http://127.0.0.1:{port}/api/v1/templates",
                                            headers={"Authorization": key}, timeout=10)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    pass  # still starting (the first request can be slow on a busy machine)
            assert process.poll() is None, f"scripts/run exited early:\n{text[-3000:]}"
            time.sleep(0.5)
        else:
            pytest.fail(f"the service did not answer in time:\n{log.read_text()[-3000:]}")
        assert response.status_code == 200, response.text
        assert response.json() == {"results": []}
        text = log.read_text()
        assert "embedded PostgreSQL and Redis" in text
        # its first start made the secret and tracking keys, readable by this user only
        for name in ("secret-key", "tracking-keys"):
            assert (tmp_path / "var" / name).stat().st_mode & 0o777 == 0o600
        assert str(tmp_path / "var") in subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", "engage.embedded", "env"], env=env, cwd=ROOT,
            capture_output=True, text=True).stdout
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "engage.embedded", "stop"], env=env, cwd=ROOT)
