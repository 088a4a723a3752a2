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
