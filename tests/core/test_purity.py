"""The core is pure (issue 12, Deliver 1): importing every module of ``mailcore`` loads no
Django, Celery, psycopg, Redis or Engage app module. Checked in a fresh interpreter, since
this test session has loaded Django already."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import mailcore

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("django", "rest_framework", "celery", "kombu", "psycopg", "redis", "engage", "api_keys",
             "templates_app", "recipient_lists", "transmissions", "tracking", "analytics")  # fmt: skip


def test_importing_every_core_module_loads_no_framework_database_or_app_module():
    modules = sorted(info.name for info in pkgutil.walk_packages(mailcore.__path__, "mailcore."))
    assert {"mailcore.language", "mailcore.links", "mailcore.tokens", "mailcore.mime"} <= set(modules)
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted({{m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the core loaded: {result.stdout.strip()}"
