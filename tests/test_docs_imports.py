"""Docs and examples import only from the front doors, so the runtime's layout can change under them.

A user writes against ``mcpvisor`` (the authoring API, the runtime, transports, actors, protocol),
``mcpvisor.supervisors``, ``mcpvisor.backends`` (with its conformance kit) and ``mcpvisor.testing``;
``mcpvisor.runtime.*`` is where the code lives, and docs/architecture.md may move it.
"""

from __future__ import annotations

import ast

import pytest
from _doc_examples import DOCS, ROOT, python_blocks

import mcpvisor

ALLOWED = {
    "mcpvisor",
    "mcpvisor.supervisors",
    "mcpvisor.backends",
    "mcpvisor.backends.testing",
    "mcpvisor.testing",
}

SOURCES = [
    (f"docs/{p.name}#{i}", block)
    for p in sorted(DOCS.glob("*.md"))
    for i, block in enumerate(python_blocks(p.name))
]
SOURCES += [
    (f"examples/{p.name}", p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples").glob("*.py"))
]


def _imported_modules(source: str) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcpvisor"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("mcpvisor")]
    return found


def test_there_is_something_to_check() -> None:
    assert len(SOURCES) > 50


@pytest.mark.parametrize(("where", "source"), SOURCES, ids=[w for w, _ in SOURCES])
def test_imports_only_from_the_front_doors(where: str, source: str) -> None:
    wrong = [module for module, _ in _imported_modules(source) if module not in ALLOWED]
    assert wrong == [], f"{where} imports from {wrong}: import from {sorted(ALLOWED)} instead"


def test_every_name_the_docs_import_from_mcpvisor_is_in_all() -> None:
    names = {n for _, source in SOURCES for m, ns in _imported_modules(source) if m == "mcpvisor" for n in ns}
    assert names - set(mcpvisor.__all__) == set()


def test_the_front_door_resolves_every_name_it_lists() -> None:
    missing = [name for name in mcpvisor.__all__ if not hasattr(mcpvisor, name)]
    assert missing == []
