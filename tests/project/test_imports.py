"""The import rules that import-linter cannot see (issue 12, Deliver 2).

``lint-imports`` (run by scripts/test) checks the layers in pyproject.toml, function-local
imports included. What it cannot check: that an import of an Engage package inside a function
is there for a reason (a cycle left, Django's app loading), said in a ``#`` comment on the
import's own line; and that every module of the project package, which is both the top and the
base of the layers, has a place in the layers contract.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORTLINTER = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
#: The project's packages: the import-linter roots, the one list of them.
PACKAGES = frozenset(IMPORTLINTER["root_packages"])
# Markers that are no reason: a linter's code, a formatter's switch.
_NOT_A_REASON = re.compile(
    r"noqa(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(?:\[[^\]]*\])?|fmt:\s*skip"
)


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment on it (tokens, so a ``#`` in a string is none)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}


def _imports_an_engage_package(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in PACKAGES
    return any(alias.name.split(".")[0] in PACKAGES for alias in node.names)


def unexplained_local_imports(source: str) -> list[int]:
    """The lines of ``source`` where a function imports an Engage package with no reason in a
    comment on one of the statement's lines."""
    comments = _comments(source)
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom) and _imports_an_engage_package(node):
                end = node.end_lineno or node.lineno
                said = " ".join(comments.get(line, "") for line in range(node.lineno, end + 1))
                if not re.search(r"[A-Za-z]{2}", _NOT_A_REASON.sub("", said)):
                    found.append(node.lineno)
    return sorted(set(found))  # a nested function's import is walked from each function around it


def test_the_finder_tells_a_reasoned_local_import_from_a_bare_one():
    source = (
        "def f():\n"
        "    from transmissions.tasks import x  # the tasks import this module\n"
        "    from engage import checks  # noqa: F401\n"
        "    import json\n"
        "    from . import sibling\n"
        "    s = '# not a comment'; from analytics import y\n"
        "from tracking import z\n"
    )
    assert unexplained_local_imports(source) == [3, 5, 6]


def test_every_function_local_import_of_an_engage_package_says_why_on_its_line():
    unexplained = []
    for package in sorted(PACKAGES):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in unexplained_local_imports(path.read_text()):
                unexplained.append(f"{path.relative_to(ROOT)}:{line}")
    assert not unexplained, (
        "import at the top of the module, or say on the import's line why it cannot be (the cycle "
        f"or Django's app loading): {unexplained}"
    )


def test_every_module_of_the_project_package_has_a_place_in_the_layers_contract():
    between_packages = [c for c in IMPORTLINTER["contracts"] if c["type"] == "layers" and "containers" not in c]
    layers = between_packages[0]["layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    modules = {f"engage.{path.stem}" for path in (ROOT / "engage").glob("*.py") if path.stem != "__init__"}
    modules |= {f"engage.{path.parent.name}" for path in (ROOT / "engage").glob("*/__init__.py")}
    assert modules - named == set(), "place these in the layers contract of pyproject.toml"
