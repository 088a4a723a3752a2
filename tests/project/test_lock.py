"""The lock files are in step with requirements*.txt (issue 12, Deliver 4): every package
required there is locked at a version the requirement allows, every locked package carries the
hashes pip checks, the runtime lock is the dev lock's subset at the same versions (so a .venv
installed from the dev lock serves scripts/run too), and whatever installs packages installs a
lock file in hash-checking mode. No network: scripts/lock is what regenerates the locks."""

from __future__ import annotations

import re
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
