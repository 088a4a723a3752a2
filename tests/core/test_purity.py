"""The core is pure (issue 12, Deliver 1): importing every module of ``mailcore`` loads no
Django, Celery, psycopg, Redis or Engage app module. Checked in a fresh interpreter, since
this test session has loaded Django already.

The forbidden modules are read from pyproject.toml's import-linter contract for the core (one
owner). Both that contract and the fresh-interpreter check see only import statements and what
runs at import time, so a module named by a string inside a function
(``importlib.import_module("django.conf")``, ``__import__(...)``, ``exec("import redis")``)
passes both: the core's source is read here and refuses every way Python offers to import or
run code by string."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mailcore
from mailcore.language.compiler import CompiledPart

ROOT = Path(__file__).resolve().parents[2]
CORE = Path(mailcore.__file__).resolve().parent


def _forbidden_modules() -> tuple[str, ...]:
    """``forbidden_modules`` of the import-linter contract whose source is ``mailcore``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = [
        contract
        for contract in config["contracts"]
        if contract["type"] == "forbidden" and contract["source_modules"] == ["mailcore"]
    ]
    assert len(contracts) == 1, "pyproject.toml: expected one forbidden contract with source_modules = ['mailcore']"
    return tuple(contracts[0]["forbidden_modules"])


FORBIDDEN = _forbidden_modules()

#: Modules whose purpose is loading or running code named by a string (``importlib``,
#: ``runpy``, ``pkgutil.resolve_name``, ``pydoc.locate``, ``code.interact`` ...): the core may
#: not import them at all.
_STRING_IMPORTERS = set("importlib imp runpy pkgutil zipimport builtins code codeop pydoc ctypes".split())
#: Names that import or run code given as a string, refused wherever they appear: as a bare
#: name (``exec(...)``; ``compile`` too: its code object runs through ``types.FunctionType``
#: without ``exec``; ``breakpoint`` imports what ``PYTHONBREAKPOINT`` names), an attribute
#: (``sys.modules["builtins"].__import__``) or a string (``getattr(module, "__import__")``).
_BARE_NAMES = {"__import__", "exec", "eval", "compile", "breakpoint", "__builtins__", "__loader__", "__spec__"}
_ATTRIBUTES = {"__import__", "import_module", "exec_module", "load_module", "run_module", "run_path", "resolve_name",
               "exec", "eval", "__builtins__", "__loader__", "__spec__"}  # fmt: skip
_STRINGS = {"__import__", "import_module", "exec", "eval", "compile", "__builtins__"}
#: The one place the core runs code it was given: the substitution language's compiler turns a
#: template into a Python function. Its generated code gets ``__builtins__`` without
#: ``__import__``, so it cannot import (test_generated_template_code_cannot_import).
ALLOWED = {("mailcore/language/compiler.py", "CompiledPart.__init__"): {"exec", "compile", "'__builtins__'", "'exec'"}}
_HOW = "imports or runs code named by a string, which neither import-linter nor the fresh-interpreter test can check"


class _StringImports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[int, str, str]] = []  # (line, enclosing function or class, what)

    def _add(self, node: ast.expr | ast.stmt, what: str) -> None:
        self.found.append((node.lineno, ".".join(self.scope), what))

    def _enter(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _enter

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in _STRING_IMPORTERS:
                self._add(node, f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and (node.module or "").split(".")[0] in _STRING_IMPORTERS:
            self._add(node, f"from {node.module} import")
        for alias in node.names:
            if alias.name in _ATTRIBUTES:
                self._add(node, f"import of {alias.name}")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _BARE_NAMES:
            self._add(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _ATTRIBUTES:
            self._add(node, f".{node.attr}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in _STRINGS:
            self._add(node, repr(node.value))


def string_imports(source: str) -> list[tuple[int, str, str]]:
    """``(line, enclosing function or class, what)`` for each place in ``source`` that can
    import a module or run code by string."""
    visitor = _StringImports()
    visitor.visit(ast.parse(source))
    return visitor.found


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


def test_the_forbidden_modules_are_the_import_linter_contracts():
    assert {"django", "celery", "psycopg", "redis", "requests", "engage", "transmissions", "smtp_injection",
            "suppression"} <= set(FORBIDDEN)  # fmt: skip


def test_no_core_module_imports_or_runs_code_by_string():
    found, allowed_seen = [], set()
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for line, scope, what in string_imports(path.read_text()):
            if what in ALLOWED.get((relative, scope), ()):
                allowed_seen.add((relative, scope))
            else:
                found.append(f"{relative}:{line} ({scope or 'module'}): {what}")
    assert not found, f"the core {_HOW}; import with an import statement instead: {found}"
    assert allowed_seen == set(ALLOWED), f"ALLOWED names places that no longer run code: {set(ALLOWED) - allowed_seen}"


def test_generated_template_code_cannot_import():
    with pytest.raises(ImportError, match="__import__ not found"):
        CompiledPart("html", "html", "", "import os\ndef _render(d, _tr, _st, _dp):\n    return []\n", {})


@pytest.mark.parametrize(
    "source",
    [
        'def f():\n    import importlib\n    return importlib.import_module("django.conf")\n',
        'def f():\n    from importlib import import_module\n    return import_module("django.conf")\n',
        'def f():\n    return __import__("transmissions.models")\n',
        'def f():\n    exec("import redis")\n',
        "def f():\n    return eval(\"__import__('redis')\")\n",
        'import importlib\ndef f():\n    return importlib.__import__("django")\n',
        'import runpy\ndef f():\n    runpy.run_module("django")\n',
        'import sys\ndef f():\n    return sys.modules["builtins"].__import__("redis")\n',
        'import sys\ndef f():\n    return getattr(sys.modules["builtins"], "__import__")("redis")\n',
        'import types\ndef f():\n    types.FunctionType(compile("import redis", "", "exec"), {})()\n',
        'def f():\n    return __builtins__["__im" + "port__"]("redis")\n',
        "def f():\n    breakpoint()\n",
        'import pkgutil\ndef f():\n    return pkgutil.resolve_name("django.conf:settings")\n',
    ],
)
def test_an_import_by_string_is_found(source):
    assert string_imports(source), f"not found:\n{source}"


def test_ordinary_code_is_not_an_import_by_string():
    source = 'import re\nfrom email.utils import formataddr\n\ndef f(text):\n    return re.compile("x").sub("", text)\n'
    assert string_imports(source) == []
