"""The docs name only what exists (issue 12, Deliver 7).

Every file path (``transmissions/sending.py``), dotted module (``tracking.outbox``),
``module.attribute`` (``tracking.outbox.events_record``) and Celery task name
(``analytics.land_events``) written in backticks in docs/*.md is in the project: the file
exists, the module imports, the attribute is there, the task is registered. Every
``ENGAGE_*`` setting they name is one the project reads. README.md and the docs link only
inside the repository (or to the web), README links to both docs, and README cites no
section of a document that is not in the repository.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
README = ROOT / "README.md"

#: The project's packages: the import-linter roots (pyproject.toml), the one list of them.
PACKAGES = frozenset(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"])

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?")
_ROOT_FILE = re.compile(r"[\w.-]+\.(?:py|md|toml|ya?ml|txt|example|cfg|ini|json|sh)")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_SETTING = re.compile(r"ENGAGE_[A-Z0-9_]+")
_WEB = ("http", "https", "mailto")


def _ignored_roots() -> set[str]:
    """Top-level directories .gitignore leaves out (``var/``, ``.venv/``): made at run time,
    not part of the repository, so a path under them names no file of it."""
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return {line.strip().strip("/") for line in lines if line.strip().endswith("/") and "*" not in line}


ROOTS = {entry.name for entry in ROOT.iterdir()} - _ignored_roots() - {".git"}


def code_spans(path: Path) -> list[str]:
    """The inline code of a Markdown file, fenced blocks (diagrams, shell sessions) left out."""
    return [span.strip() for span in _INLINE_CODE.findall(_FENCE.sub("", path.read_text()))]


def repo_path(span: str) -> str | None:
    """``span`` when it names a path in the repository (its first segment is a top-level entry
    of the repository), else None."""
    if "/" in span and _PATH.fullmatch(span) and span.split("/", 1)[0] in ROOTS:
        return span
    if "/" not in span and _ROOT_FILE.fullmatch(span):
        return span
    return None


def dotted_name(span: str) -> str | None:
    """``span`` without a trailing ``()`` when it is a dotted name in one of the project's packages."""
    name = span.removesuffix("()")
    if _DOTTED.fullmatch(name) and name.split(".", 1)[0] in PACKAGES:
        return name
    return None


def celery_task_names() -> set[str]:
    """The names of every registered Celery task (``analytics.land_events``): each app's
    ``tasks`` module imported, as the worker's autodiscovery does."""
    from engage.celery import app

    for package in sorted(PACKAGES):
        if (ROOT / package / "tasks.py").exists():
            importlib.import_module(f"{package}.tasks")
    return set(app.tasks)


def resolve(name: str) -> object:
    """The object ``name`` names: the longest importable module prefix, then attributes.
    Raises ImportError / AttributeError saying what is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" moves on; a module failing to import is an error.
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"no module of {name!r} can be imported")


def _cases(kind) -> list:
    cases = []
    for doc in DOCS:
        for span in dict.fromkeys(code_spans(doc)):
            if (value := kind(span)) is not None:
                cases.append(pytest.param(value, id=f"{doc.name}:{value}"))
    return cases


def _settings_read() -> str:
    sources = [ROOT / "engage" / "settings.py", ROOT / ".env.example", *sorted((ROOT / "scripts").iterdir())]
    return "\n".join(path.read_text() for path in sources if path.is_file())


def test_the_docs_exist_and_readme_links_to_both():
    names = {doc.name for doc in DOCS}
    assert {"architecture.md", "api-reference.md"} <= names
    targets = set(_LINK.findall(README.read_text()))
    assert {"docs/architecture.md", "docs/api-reference.md"} <= targets


@pytest.mark.parametrize("path", _cases(repo_path))
def test_every_path_in_the_docs_exists(path):
    assert (ROOT / path).exists(), f"{path} is named in docs/ but is not in the repository"


@pytest.mark.parametrize("name", _cases(dotted_name))
def test_every_module_and_attribute_in_the_docs_exists(name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as exc:
        if name not in celery_task_names():  # a task's name, as beat and the logs show it
            pytest.fail(f"{name} is named in docs/ but is neither a module, an attribute nor a task: {exc}")


def test_every_setting_in_the_docs_is_one_engage_reads():
    read = _settings_read()
    named = {span for doc in DOCS for span in code_spans(doc) if _SETTING.fullmatch(span)}
    assert named, "the docs name no setting"
    unknown = sorted(name for name in named if not re.search(rf"\b{name}\b", read))
    assert not unknown, f"named in docs/ but read nowhere (engage/settings.py, .env.example, scripts/): {unknown}"


def test_every_path_in_the_readme_exists():
    missing = [span for span in code_spans(README) if "/" in span and repo_path(span) and not (ROOT / span).exists()]
    assert not missing, f"README.md names paths that are not in the repository: {missing}"


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_links_stay_inside_the_repository(document):
    """A link is to the web or to a file of the repository; no text reaches out of it."""
    text = document.read_text()
    for target in _LINK.findall(text):
        if urlsplit(target).scheme in _WEB:
            continue
        relative = target.split("#", 1)[0]
        if not relative:
            continue  # an anchor in the same document
        assert not Path(relative).is_absolute(), f"{document.name} links to an absolute path: {target}"
        resolved = (document.parent / relative).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
        assert resolved.exists(), f"{document.name} links to a missing file: {target}"
    outside = re.findall(r"(?<![\w.])\.\./[^\s`)]*", text)
    assert not outside, f"{document.name} refers to files outside the repository: {outside}"


def test_readme_cites_no_section_of_a_document_outside_the_repository():
    """The API contract's sections are summed up in docs/api-reference.md; the contract
    itself is not in the repository, so README points there instead."""
    text = README.read_text()
    assert not re.findall(r"\bSPEC\b[^\n]*", text)
    assert "STYLE.md" not in text


#: A migration that rewrites stored rows: SQL or ORM updates, not only schema changes.
_ROW_REWRITE = re.compile(r"\bUPDATE\s+\w+\s+SET\b|\.update\(|\bbulk_update\(", re.I)


def _section(text: str, heading: str) -> str:
    found = re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"no '## {heading}' section"
    return found.group(1)


def test_every_migration_that_rewrites_rows_is_in_the_upgrading_notes():
    """An old worker running during ``migrate`` writes the values a data migration renames away,
    and a rewrite of a big table takes time and disk: docs/architecture.md's "Upgrading" says
    to stop the workers first and names each such migration."""
    upgrading = _section((ROOT / "docs/architecture.md").read_text(), "Upgrading")
    for word in ("stop", "workers", "beat", "listener", "manage.py migrate", "VACUUM"):
        assert word in upgrading, f"docs/architecture.md, Upgrading: says nothing of {word!r}"
    rewrites = [path for path in sorted(ROOT.glob("*/migrations/0*.py")) if _ROW_REWRITE.search(path.read_text())]
    assert rewrites, "no migration rewrites rows: update this test"
    for path in rewrites:
        name = path.relative_to(ROOT).as_posix()
        assert name in upgrading, f"{name} rewrites stored rows: name it in docs/architecture.md's Upgrading section"
