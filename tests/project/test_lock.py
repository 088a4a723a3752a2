"""The lock files are in step with requirements*.txt (issue 12, Deliver 4): every package
required there is locked at a version the requirement allows, every locked package carries the
hashes pip checks, the runtime lock is the dev lock's subset at the same versions (so a .venv
installed from the dev lock serves scripts/run too), and whatever installs packages installs a
lock file in hash-checking mode. No network: scripts/lock is what regenerates the locks, and it
records the sha256 of requirements*.txt in each lock, so any edit of them without it fails here."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "the lock is out of step with requirements*.txt: run scripts/lock"
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}

#: One locked package: ``name==version`` (an optional marker), then its ``--hash`` lines.
_ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>[^\s;\\]+)[^\\\n]*(?P<hashes>(?:\\\n[ \t]+--hash=\S+[ \t]*)*)", re.M
)
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
_INCLUDE = re.compile(r"^-r\s+(\S+)$")


def requirements(name: str) -> list[Requirement]:
    """The requirements of ``name`` and of the files it includes (``-r``), for this platform."""
    found: list[Requirement] = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if include := _INCLUDE.match(line):
            found += requirements(include.group(1))
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            found.append(requirement)
    return found


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, sha256 hashes) of every package in the lock file ``name``."""
    return {
        canonicalize_name(entry["name"]): (entry["version"], _HASH.findall(entry["hashes"]))
        for entry in _ENTRY.finditer((ROOT / name).read_text())
    }


@pytest.mark.parametrize(("source", "lock"), LOCKS.items())
def test_every_requirement_is_locked_at_a_version_it_allows(source, lock):
    packages = locked(lock)
    for requirement in requirements(source):
        name = canonicalize_name(requirement.name)
        assert name in packages, f"{requirement} ({source}) is not in {lock}; {REGENERATE}"
        version = packages[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement} ({source}) is locked at {version} in {lock}; {REGENERATE}"
        )


@pytest.mark.parametrize("lock", LOCKS.values())
def test_every_line_of_a_lock_is_a_package_with_its_hashes(lock):
    text = (ROOT / lock).read_text()
    packages = locked(lock)
    assert packages, f"{lock} locks nothing; {REGENERATE}"
    for name, (version, hashes) in packages.items():
        assert hashes, f"{name}=={version} has no hash in {lock}; {REGENERATE}"
    # Nothing else: no unhashed requirement, option or include that pip would have to trust.
    stripped = _ENTRY.sub("", text)
    stray = [line for line in stripped.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not stray, f"{lock} holds lines that are not locked packages: {stray[:3]}; {REGENERATE}"


def test_the_runtime_lock_is_a_subset_of_the_dev_lock_at_the_same_versions():
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    for name, (version, _) in runtime.items():
        assert dev.get(name, ("missing",))[0] == version, (
            f"{name}=={version} (requirements.lock) is {dev.get(name, ('missing',))[0]} in requirements-dev.lock; {REGENERATE}"
        )


#: A line of a lock's header (scripts/lock): the sha256 of a requirements file it was made from.
_INPUT = re.compile(r"^#\s+(requirements[\w.-]*\.txt) sha256:([0-9a-f]{64})$", re.M)


def stale_inputs(root: Path, lock: str) -> list[str]:
    """Why ``lock`` under ``root`` was not made from today's requirements*.txt (empty when it
    was): the sha256 scripts/lock recorded for each of them, compared with the file. Any edit
    counts (an extra, a marker, a line removed), which reading the requirements cannot see."""
    recorded = dict(_INPUT.findall((root / lock).read_text()))
    current = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in root.glob("requirements*.txt")}
    if not recorded:
        return [f"{lock} records no sha256 of its inputs"]
    return [
        f"{name} is not what {lock} was made from" if name in recorded else f"{name} is not among {lock}'s inputs"
        for name, digest in sorted(current.items())
        if recorded.get(name) != digest
    ] + [f"{lock} was made from {name}, which is gone" for name in sorted(recorded.keys() - current.keys())]


@pytest.mark.parametrize("lock", LOCKS.values())
def test_the_lock_was_made_from_the_requirements_files_as_they_are(lock):
    stale = stale_inputs(ROOT, lock)
    assert not stale, f"{'; '.join(stale)}; {REGENERATE}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("celery==5.5.3\n", "celery[sqs]==5.5.3\n"),  # an extra: more packages, same pins
        ("redis==5.2.1\n", "redis==5.2.1; sys_platform == 'win32'\n"),  # a marker
        ("honcho==2.0.0\n", ""),  # a requirement removed, still in the lock
    ],
)
def test_an_edit_of_a_requirements_file_the_lock_does_not_show_is_found(tmp_path, old, new):
    for path in [*ROOT.glob("requirements*.txt"), *ROOT.glob("requirements*.lock")]:
        shutil.copy(path, tmp_path / path.name)
    text = (tmp_path / "requirements.txt").read_text()
    assert old in text, f"requirements.txt has no {old!r}: update this test"
    (tmp_path / "requirements.txt").write_text(text.replace(old, new))
    for lock in LOCKS.values():
        assert stale_inputs(tmp_path, lock) == [f"requirements.txt is not what {lock} was made from"]


#: What installs packages; scripts/lock is left out: it installs the tool that makes the locks.
INSTALLERS = [*sorted(set((ROOT / "scripts").iterdir()) - {ROOT / "scripts" / "lock"}), ROOT / "Dockerfile",
              *sorted((ROOT / ".ci").iterdir()), ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # fmt: skip
_PIP_INSTALL = re.compile(r"\bpip\"?\s+install\b.*")


def test_whatever_installs_packages_installs_a_lock_file_with_hashes():
    installs = [(path, match.group(0)) for path in INSTALLERS for match in _PIP_INSTALL.finditer(path.read_text())]
    assert any(path.name == "lib.sh" for path, _ in installs), (
        "scripts/lib.sh no longer runs pip install: update this test"
    )
    for path, command in installs:
        relative = path.relative_to(ROOT)
        # scripts/lib.sh installs "$lock", the lock file ensure_venv is given (scripts/run, scripts/test).
        assert re.search(r"-r\s+(\S*\.lock\b|\"\$lock\")", command), (
            f"{relative}: {command!r} does not install a lock file"
        )
        assert "--require-hashes" in command, f"{relative}: {command!r} does not pass --require-hashes"
    for path in INSTALLERS:
        for given in re.findall(r"^\s*ensure_venv\s+(\S+)", path.read_text(), re.M):
            assert given in LOCKS.values(), f"{path.relative_to(ROOT)}: ensure_venv {given} is not a lock file"


#: A stand-in for ``$PYTHON -m venv DIR``: it makes DIR/bin/pip, which logs its arguments and
#: records the lock it installed in the venv (or fails when FAKE_PIP_FAIL is set). Nothing is
#: downloaded; what is checked is where scripts/lib.sh installs a lock.
_FAKE_PYTHON = r"""#!/usr/bin/env bash
[ "$1" = -m ] && [ "$2" = venv ] || { echo "fake python: only -m venv" >&2; exit 2; }
[ ! -e "$3" ] || { echo "fake python: $3 exists" >&2; exit 3; }
mkdir -p "$3/bin" "$3/lib"
echo "venv $3" >> "$FAKE_LOG"
cat > "$3/bin/pip" <<'PIP'
#!/usr/bin/env bash
echo "pip $*" >> "$FAKE_LOG"
[ -z "${FAKE_PIP_FAIL:-}" ] || exit 1
for lock; do :; done
cp "$lock" "$(dirname "$0")/../lib/installed"
PIP
chmod +x "$3/bin/pip"
"""


@pytest.fixture
def project(tmp_path):
    """A copy of scripts/lib.sh beside two small lock files, and a run of ``ensure_venv``."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/lib.sh").write_text((ROOT / "scripts/lib.sh").read_text())
    (tmp_path / "requirements.lock").write_text("a==1 \\\n    --hash=sha256:" + "1" * 64 + "\n")
    (tmp_path / "requirements-dev.lock").write_text("a==1 \\\n    --hash=sha256:" + "1" * 64 + "\nb==2\n")
    python = tmp_path / "fake-python"
    python.write_text(_FAKE_PYTHON)
    python.chmod(0o755)
    log = tmp_path / "log"
    log.touch()

    def ensure_venv(lock: str, **env: str) -> subprocess.CompletedProcess:
        command = f"source scripts/lib.sh && ensure_venv {lock}"
        environ = {"PATH": os.environ["PATH"], "PYTHON": str(python), "FAKE_LOG": str(log), **env}
        return subprocess.run(["bash", "-c", command], cwd=tmp_path, env=environ, capture_output=True, text=True,
                              timeout=30)  # fmt: skip

    return tmp_path, log, ensure_venv


def test_a_changed_lock_is_installed_into_a_fresh_venv_and_an_unchanged_one_is_not_installed_again(project):
    root, log, ensure_venv = project
    assert ensure_venv("requirements-dev.lock").returncode == 0
    assert (
        log.read_text()
        == "venv .venv\npip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock\n"
    )
    (root / ".venv/lib/dropped-package").touch()  # stands for what an earlier lock installed
    assert ensure_venv("requirements-dev.lock").returncode == 0
    assert ensure_venv("requirements.lock").returncode == 0  # the dev lock's venv serves it
    assert log.read_text().count("pip ") == 1
    # pip skips the hash check of what is installed already: a changed lock gets a new venv.
    with (root / "requirements-dev.lock").open("a") as lock:
        lock.write("c==3\n")
    assert ensure_venv("requirements-dev.lock").returncode == 0
    assert log.read_text().count("venv .venv\n") == 2 and log.read_text().count("pip ") == 2
    assert not (root / ".venv/lib/dropped-package").exists()
    assert (root / ".venv/lib/installed").read_text() == (root / "requirements-dev.lock").read_text()
    assert not (root / ".venv.old").exists()
    # scripts/run (the runtime lock) on a dev venv after a change rebuilds it with the dev lock.
    (root / "requirements.lock").write_text((root / "requirements.lock").read_text() + "# edited\n")
    assert ensure_venv("requirements.lock").returncode == 0
    assert log.read_text().splitlines()[-1].endswith("-r requirements-dev.lock")
    assert ensure_venv("requirements-dev.lock").returncode == 0 and log.read_text().count("pip ") == 3


def test_a_failed_install_leaves_the_previous_venv_in_place_and_unstamped_for_the_new_lock(project):
    root, log, ensure_venv = project
    assert ensure_venv("requirements.lock").returncode == 0
    (root / ".venv/lib/marker").touch()
    (root / "requirements.lock").write_text((root / "requirements.lock").read_text() + "d==4\n")
    failed = ensure_venv("requirements.lock", FAKE_PIP_FAIL="1")
    assert failed.returncode != 0 and "installing requirements.lock failed" in failed.stderr
    assert (root / ".venv/lib/marker").exists() and not (root / ".venv.old").exists()
    assert ensure_venv("requirements.lock").returncode == 0  # tried again, from scratch
    assert not (root / ".venv/lib/marker").exists()
    assert log.read_text().count("venv .venv\n") == 3
