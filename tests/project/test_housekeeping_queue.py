"""A Celery worker set up before beat's queue existed (``--queues celery``, from an older
Procfile or unit file) would run none of beat's tasks, and nothing would say so: the events
would stop landing and beat's ticks pile up in Redis (an attacker's finding). Such a worker
now says it when it starts; a worker without ``--queues`` serves both queues."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WARNING = "this worker serves the 'celery' queue and not 'housekeeping'"


def _start_up(*queues: str) -> str:
    """What ``celery worker`` prints until its banner's task list, with ``--queues`` when
    ``queues`` are given. Its broker is a closed port: it consumes nothing."""
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"}
    command = [str(ROOT / ".venv/bin/celery"), "-A", "engage", "worker", "-c", "1", "-l", "INFO", "-n",
               f"probe-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]  # fmt: skip
    if queues:
        command += ["--queues", ",".join(queues)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    output = ""
    try:
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while time.monotonic() < deadline and "[tasks]" not in output:
            line = process.stdout.readline()
            if not line:
                break
            output += line
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert "[tasks]" in output, output
    return output


@pytest.mark.slow
def test_a_worker_serving_the_sending_queue_without_beats_says_so_and_one_without_queues_serves_both():
    assert WARNING in _start_up("celery")
    for queues in ((), ("celery", "housekeeping")):
        output = _start_up(*queues)
        assert WARNING not in output, queues
        assert ".> housekeeping " in output and ".> celery " in output, output
    assert WARNING not in _start_up("webhooks")
