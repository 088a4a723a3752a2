"""The pre-commit hooks run the checks scripts/test runs before the suite (issue 12,
Deliver 4), so a commit is checked as CI checks it; each hook passes on the tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("ruff check", "ruff format --check", "lint-imports", "bin/mypy", "makemigrations --check")


def _hooks() -> list[dict]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_every_check_of_scripts_test_has_a_pre_commit_hook():
    script = (ROOT / "scripts" / "test").read_text()
    entries = " | ".join(hook["entry"] for hook in _hooks())
    for check in CHECKS:
        assert check in script, f"scripts/test no longer runs {check!r}: update CHECKS"
        assert check in entries, f"no pre-commit hook runs {check!r}"


def test_mypy_runs_without_arguments_so_pyproject_says_what_is_checked():
    script_lines = [line.split("#")[0].strip() for line in (ROOT / "scripts" / "test").read_text().splitlines()]
    assert ".venv/bin/mypy" in script_lines
    assert ".venv/bin/mypy" in [hook["entry"] for hook in _hooks()]


@pytest.mark.slow
def test_the_hooks_pass_on_the_tree():
    result = subprocess.run([str(ROOT / ".venv/bin/pre-commit"), "run", "--all-files"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
