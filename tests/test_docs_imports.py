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


def _loads(statement: str) -> list[str]:
    """The mcpvisor.runtime packages a fresh interpreter has loaded after ``statement``."""
    import subprocess
    import sys

    code = (
        f"{statement}\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('mcpvisor.runtime.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = ast.literal_eval(out.stdout)
    return loaded


def test_the_front_door_loads_nothing_until_a_name_is_used() -> None:
    assert _loads("import mcpvisor, mcpvisor.supervisors, mcpvisor.backends") == []


def test_the_authoring_api_loads_no_runtime_tree_and_no_transport() -> None:
    loaded = _loads("import mcpvisor.runtime.server")
    assert "mcpvisor.runtime.server._server" in loaded
    assert [m for m in loaded if m.startswith(("mcpvisor.runtime.tree", "mcpvisor.runtime.transports"))] == []


def test_the_runtime_names_still_import_from_their_old_package() -> None:
    import mcpvisor.runtime.server as old
    from mcpvisor.runtime import tree

    for name in ("start_server", "RunningServer", "handle_request", "RequestLimitReached", "ServerPort"):
        assert getattr(old, name) is getattr(tree, name) is getattr(mcpvisor, name)
    with pytest.raises(AttributeError):
        _ = old.no_such_name
