"""The README's run command on the embedded default: no DATABASE_URL/REDIS_URL, yet the API
answers; its processes are supervised (scripts/Procfile): a process that dies is named with its
exit status and stops the run, and Ctrl-C or SIGTERM leaves no process behind. It says its URLs,
demo key and admin account last, keeps them in var/first-run.txt (0600), is quiet while idle
and stops its workers without killing a task (issue 15, Deliver 7)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
PROCESSES = ("sink", "send", "housekeeping", "beat", "webhooks", "web", "track")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent's bookkeeping is left)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _state(pid: int) -> str:
    """The process's state letter (proc(5): R, S, Z...), or "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@dataclass
class Run:
    process: subprocess.Popen
    log: Path
    env: dict
    port: int
    track_port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if found := re.search(pattern, text, re.M):
                return found
            assert self.process.poll() is None, f"scripts/run exited early:\n{text[-3000:]}"
            time.sleep(0.3)
        pytest.fail(f"no {pattern!r} in time:\n{self.text()[-3000:]}")

    def pids(self) -> dict[str, int]:
        """Each supervised process's pid, as honcho announced it."""
        return {name: int(pid) for name, pid in re.findall(r"system\s+\| (\w+)\.1 started \(pid=(\d+)\)", self.text())}

    def ready(self) -> set[int]:
        """Waits until every process is serving; returns every pid of the run (pool children too)."""
        for name in PROCESSES:
            self.wait_for(rf"system\s+\| {name}\.1 started")
        self.wait_for(r"^\S+ send\.1\s+\|.* send-\d+@\S+ ready\.")
        self.wait_for(r"^\S+ webhooks\.1\s+\|.* webhooks-\d+@\S+ ready\.")
        self.wait_for(r"^\S+ housekeeping\.1\s+\|.* housekeeping-\d+@\S+ ready\.")
        self.wait_for(r"^\S+ web\.1\s+\|.*Booting worker")
        self.wait_for(r"^\S+ track\.1\s+\|.*Spawning worker")  # granian (scripts/Procfile)
        self.wait_for(r"^\S+ sink\.1\s+\|.*development SMTP sink")
        return descendants(self.process.pid)


@pytest.fixture(scope="module")
def var_root(tmp_path_factory):
    """One embedded PostgreSQL and Redis for the runs of this module (the first run migrates)."""
    root = tmp_path_factory.mktemp("run")
    yield root
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    subprocess.run(
        [PYTHON, "-m", "engage.embedded", "stop"], env={**env, "ENGAGE_VAR_DIR": str(root / "var")}, cwd=ROOT
    )


@pytest.fixture
def start_run(var_root, tmp_path):
    runs: list[Run] = []

    def start() -> Run:
        unset = {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "ENGAGE_SECRET_KEY", "ENGAGE_TRACKING_KEYS"}
        env = {k: v for k, v in os.environ.items() if k not in unset}  # a newcomer's: no URLs, no keys
        port, track_port, sink_port, smtp_port = free_port(), free_port(), free_port(), free_port()
        env.update(ENGAGE_VAR_DIR=str(var_root / "var"), ENGAGE_PORT=str(port), ENGAGE_TRACK_PORT=str(track_port),
                   ENGAGE_SINK_PORT=str(sink_port), ENGAGE_SMTP_PORT=str(smtp_port),
                   ENGAGE_SINK_DIR=str(tmp_path / "sink"), ENGAGE_WEB_WORKERS="1")  # fmt: skip
        log = tmp_path / f"run-{len(runs)}.log"
        with log.open("w") as out:
            process = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        runs.append(Run(process, log, env, port, track_port))
        return runs[-1]

    yield start
    for run in runs:  # whatever a failed test left running
        pids = descendants(run.process.pid)
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGTERM)
            try:
                run.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def assert_stops_leaving_nothing(run: Run, pids: set[int]) -> int:
    status = run.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120] for pid in pids if alive(pid)}
    assert not left, f"processes of the run left behind: {left}\n{run.text()[-3000:]}"
    return status


@pytest.mark.slow
def test_run_command_on_embedded_default_serves_the_api_with_the_printed_key(start_run, var_root):
    run = start_run()
    key = run.wait_for(r"demo API key \(shown once, keep it\): ([0-9a-f]{40})")[1]
    deadline = time.monotonic() + 120
    while True:
        try:
            response = requests.get(f"http://127.0.0.1:{run.port}/api/v1/templates",
                                    headers={"Authorization": key}, timeout=10)  # fmt: skip
            break
        except (requests.ConnectionError, requests.Timeout):
            assert run.process.poll() is None, f"scripts/run exited early:\n{run.text()[-3000:]}"
            assert time.monotonic() < deadline, f"the service did not answer in time:\n{run.text()[-3000:]}"
            time.sleep(0.5)  # still starting (the first request can be slow on a busy machine)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": []}
    text = run.text()
    assert "embedded PostgreSQL and Redis" in text
    assert re.search(r"engage: API on http://127\.0\.0\.1:\d+/api/v1, admin on .*, SMTP sink on 127\.0\.0\.1:\d+", text)
    # its first start made the secret and tracking keys, readable by this user only
    for name in ("secret-key", "tracking-keys"):
        assert (var_root / "var" / name).stat().st_mode & 0o777 == 0o600
    exports = subprocess.run([PYTHON, "-m", "engage.embedded", "env"], env=run.env, cwd=ROOT,
                             capture_output=True, text=True).stdout  # fmt: skip
    assert str(var_root / "var") in exports
    # the embedded Redis the run uses keeps an append-only file
    redis_url = re.search(r"export REDIS_URL='([^']+)'", exports)[1]
    assert redis.Redis.from_url(redis_url).config_get("appendonly") == {"appendonly": "yes"}

    pids = run.ready()
    assert set(run.pids().values()) <= pids
    # tracked links point at the track process, which serves them alone; web still answers
    # them (links sent before the split), and neither takes the other's traffic
    assert re.search(rf"tracking on http://127\.0\.0\.1:{run.track_port}, SMTP", text)
    track = f"http://127.0.0.1:{run.track_port}"
    for url in (f"{track}/q/not-a-token", f"{track}/f/not-a-token", f"{track}/u/not-a-token"):
        response = requests.get(url, timeout=10, allow_redirects=False)
        assert (response.status_code, response.text) == (404, "Not Found\n"), url
    for path in ("/api/v1/templates", "/admin/", "/report/"):
        response = requests.get(track + path, headers={"Authorization": key}, timeout=10, allow_redirects=False)
        assert (response.status_code, response.text) == (404, "Not Found\n"), path
    response = requests.get(f"http://127.0.0.1:{run.port}/q/not-a-token", timeout=10)
    assert (response.status_code, response.text) == (404, "Not Found\n")
    # last, once every process is up: the URLs, the key and the admin account, kept in a file
    # only this user can read
    block = run.wait_for(r"^Engage is running \(Ctrl-C or kill (\d+) stops it\):\n((?:  .*\n)+)")
    assert re.search(r"send\.1\s+\|.* send-\d+@\S+ ready\.", text := run.text()[: block.start()]), text[-3000:]
    assert re.search(r"webhooks\.1\s+\|.* webhooks-\d+@\S+ ready\.", text)
    assert re.search(r"housekeeping\.1\s+\|.* housekeeping-\d+@\S+ ready\.", text)
    assert int(block[1]) == run.process.pid, "the pid to kill is scripts/run's (the supervisor's)"
    assert f"http://127.0.0.1:{run.port}/  (sign in" in block[2] and key in block[2]
    password = re.search(r"admin account \(shown once\): user 'admin', password '(\S+)'", block[2])[1]
    first_run = var_root / "var" / "first-run.txt"
    assert first_run.stat().st_mode & 0o777 == 0o600
    assert key in first_run.read_text() and password in first_run.read_text()
    assert f"{first_run}, readable by you alone" in block[2]
    # the subshell that printed the block has ended and is not left a zombie of the run
    zombies = [pid for pid in descendants(run.process.pid) if _state(pid) == "Z"]
    assert not zombies, zombies
    # idle, the workers and beat log nothing at INFO (beat queues a task every second)
    quiet_from = len(run.text())
    time.sleep(8)
    idle = [line for line in run.text()[quiet_from:].splitlines() if re.match(r"\S+ (send|webhooks|beat)\.1 ", line)]
    assert not idle, idle
    run.process.send_signal(signal.SIGTERM)  # to scripts/run (honcho) alone: it stops the others
    assert_stops_leaving_nothing(run, pids)
    assert re.search(r"system\s+\| SIGTERM received", run.text())
    # no pool child is killed mid-task by the group's SIGTERM (engage/celery.py): the main process
    # ends its running task and stops (SIGKILL still ends a stop over ENGAGE_STOP_GRACE, a whole group)
    assert "WorkerLostError" not in run.text(), run.text()[-3000:]
    # each process stops cleanly: status 0 (granian once said 1, its worker signalled before it)
    stopped = re.findall(r"system\s+\| (\w+)\.1 stopped \(rc=(-?\d+)\)", run.text())
    assert {name for name, _rc in stopped} >= set(PROCESSES) and all(rc == "0" for _name, rc in stopped), stopped


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sink", "beat"])
def test_a_process_that_dies_is_named_with_its_exit_status_and_stops_the_run(start_run, name):
    """Beat included: it once ran inside the send worker (--beat), where its death stopped
    landing and scheduled work without a word."""
    run = start_run()
    pids = run.ready()
    os.kill(run.pids()[name], signal.SIGKILL)
    status = assert_stops_leaving_nothing(run, pids)
    assert re.search(rf"system\s+\| {name}\.1 stopped \(rc=-9\)", run.text()), run.text()[-3000:]
    assert status != 0


@pytest.mark.slow
def test_ctrl_c_stops_every_process_of_the_run(start_run):
    run = start_run()
    pids = run.ready()
    # a later start points at the file the first one wrote (this test alone: it is the first)
    block = run.wait_for(r"^Engage is running \(Ctrl-C or kill (\d+) stops it\):\n((?:  .*\n)+)")[2]
    assert "(made by the first start)" in block or "demo API key (shown once, keep it)" in block, block
    os.killpg(run.process.pid, signal.SIGINT)  # what a terminal sends to its foreground group
    assert_stops_leaving_nothing(run, pids)
    assert re.search(r"system\s+\| SIGINT received", run.text())
