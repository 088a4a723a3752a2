"""scripts/run's supervisor (engage/supervise.py): honcho with ENGAGE_STOP_GRACE seconds, not
its fixed 5, between SIGTERM and SIGKILL. A newcomer saw an idle send worker SIGKILLed 5 s into
its warm shutdown on a loaded machine; one ending a chunk to a slow relay would always be."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engage.supervise import grace_parse

ROOT = Path(__file__).resolve().parents[2]

# "slow" takes 2 s to end after SIGTERM; "quick" exits at once, which makes honcho stop the rest.
_PROCFILE = textwrap.dedent(
    f"""\
    slow: exec {sys.executable} -c "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(2), sys.exit(0))); print('up', flush=True); time.sleep(60)"
    quick: sleep 1
    """
)


def _run(tmp_path: Path, grace: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "Procfile").write_text(_PROCFILE)
    return subprocess.run(
        [sys.executable, "-m", "engage.supervise", grace, "--procfile", str(tmp_path / "Procfile"),
         "--app-root", str(tmp_path), "--env", "/dev/null", "start"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_a_process_within_the_grace_ends_on_its_own(tmp_path):
    done = _run(tmp_path, "10")
    assert "slow.1 stopped (rc=0)" in done.stdout, done.stdout
    assert "sending SIGKILL" not in done.stdout


@pytest.mark.slow
def test_a_process_over_the_grace_is_killed(tmp_path):
    done = _run(tmp_path, "1")
    assert "slow.1 stopped (rc=-9)" in done.stdout, done.stdout


@pytest.mark.parametrize("text", ["0", "3601", "ten", "", "1.5"])
def test_a_bad_grace_is_refused_with_its_range(text, tmp_path):
    with pytest.raises(ValueError, match="ENGAGE_STOP_GRACE .* 1-3600"):
        grace_parse(text)
    done = _run(tmp_path, text)
    assert done.returncode == 2
    assert "ENGAGE_STOP_GRACE must be a whole number of seconds in 1-3600" in done.stderr


def test_scripts_run_passes_the_setting():
    run = (ROOT / "scripts" / "run").read_text()
    assert 'STOP_GRACE="$(env_or_dotenv ENGAGE_STOP_GRACE 30)"' in run
    assert 'exec .venv/bin/python -m engage.supervise "$STOP_GRACE" --procfile scripts/Procfile' in run


# "parent" starts a child in its process group; on SIGTERM it stops the child itself (SIGUSR1),
# as gunicorn, granian and Celery stop their workers. Each says which signals it got.
_FAMILY = textwrap.dedent(
    """\
    import os, signal, subprocess, sys, time
    out = sys.argv[1]
    def said(who, what):
        with open(out, "a") as f:
            f.write(f"{who} {what}\\n")
    if sys.argv[2:] == ["child"]:
        signal.signal(signal.SIGTERM, lambda *a: (said("child", "TERM"), sys.exit(1)))
        signal.signal(signal.SIGUSR1, lambda *a: (said("child", "USR1"), sys.exit(0)))
        said("child", "up")
        time.sleep(60)
    child = subprocess.Popen([sys.executable, __file__, out, "child"])
    def stop(*a):
        said("parent", "TERM")
        time.sleep(0.5)  # the child had the group's SIGTERM by now, had it been sent one
        child.send_signal(signal.SIGUSR1)
        sys.exit(child.wait())
    signal.signal(signal.SIGTERM, stop)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_the_stop_signals_each_process_not_its_children(tmp_path):
    """A process with workers gets the SIGTERM and stops them itself: they are not signalled
    behind its back (a granian worker that ended first made granian log 'Unexpected exit
    from worker-1' and stop with status 1 on a clean stop: a newcomer's finding)."""
    script, said = tmp_path / "family.py", tmp_path / "said"
    script.write_text(_FAMILY)
    (tmp_path / "Procfile").write_text(f"family: exec {sys.executable} {script} {said}\nquick: sleep 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "engage.supervise", "10", "--procfile", str(tmp_path / "Procfile"),
         "--app-root", str(tmp_path), "--env", "/dev/null", "start"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "family.1 stopped (rc=0)" in done.stdout, done.stdout
    assert said.read_text().splitlines() == ["child up", "parent TERM", "child USR1"]
