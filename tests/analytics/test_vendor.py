"""The vendored uPlot is exactly the npm release pinned in assets/package-lock.json."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
VENDOR = ROOT / "analytics" / "static" / "analytics" / "vendor" / "uplot"
# vendored file -> its path inside the npm tarball
FILES = {"uPlot.iife.min.js": "package/dist/uPlot.iife.min.js", "uPlot.min.css": "package/dist/uPlot.min.css",
         "LICENSE": "package/LICENSE"}  # fmt: skip


def _locked() -> tuple[str, str]:
    lock = json.loads((ASSETS / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/uplot"]
    return entry["version"], entry["integrity"]


def test_package_json_pins_the_locked_version_exactly():
    version, _ = _locked()
    assert json.loads((ASSETS / "package.json").read_text())["dependencies"]["uplot"] == version


def test_the_kept_tarball_is_the_one_the_lock_names():
    version, integrity = _locked()
    algorithm, _, digest = integrity.partition("-")
    assert algorithm == "sha512"
    tarball = (ASSETS / f"uplot-{version}.tgz").read_bytes()
    assert base64.b64encode(hashlib.sha512(tarball).digest()).decode() == digest


def test_each_vendored_file_is_the_file_of_the_pinned_release():
    version, _ = _locked()
    with tarfile.open(ASSETS / f"uplot-{version}.tgz") as archive:
        for name, member in FILES.items():
            extracted = archive.extractfile(member)
            assert extracted is not None, member
            released = extracted.read()
            vendored = (VENDOR / name).read_bytes()
            assert hashlib.sha512(vendored).digest() == hashlib.sha512(released).digest(), name
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted(FILES)
