"""The test suite's own shape (issue 12, Deliver 6): shared test code lives in ``helpers.py``
modules and fixtures, never in a test module or a conftest that another module imports."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def _imports_of_test_modules(source: str) -> list[str]:
    """The modules named ``test_*`` or ``conftest`` that ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [name for name in names if name.split(".")[-1].startswith(("test_", "conftest"))]
    return found


def test_the_check_finds_an_import_from_a_test_module():
    assert _imports_of_test_modules("from tests.compat.test_python_sparkpost import client") == [
        "tests.compat.test_python_sparkpost"
    ]
    assert _imports_of_test_modules("from tests.compat.helpers import client\nimport tests.helpers") == []


def test_no_test_module_imports_from_another_test_module_or_a_conftest():
    offenders = [
        f"{path.relative_to(TESTS.parent)}: {module}"
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
        for module in _imports_of_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "move shared test code into a helpers.py module or a fixture: " + ", ".join(offenders)
