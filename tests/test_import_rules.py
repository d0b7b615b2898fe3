"""The layer rule of docs/architecture.md, checked on the source: imports point down only.

Layers, bottom to top (a package may import its own package and any package of a lower layer; two
packages of one layer do not import each other):

1. ``supervisors``, ``backends``: OTP supervision, state and task storage; nothing MCP.
2. ``runtime.actors``, ``runtime.protocol``: actors on trio; the sans-IO MCP protocol.
3. ``runtime.server``: the authoring API (Server, decorators, Context, the handler's errors).
4. ``runtime.tree``: the supervised runtime (start_server, sessions, stores, tasks, dispatch).
5. ``runtime.transports``: stdio, Streamable HTTP, in-memory; ``serve`` / ``run_server``.
6. ``mcpvisor``: the facade (``mcpvisor/__init__.py``), the CLI, ``mcpvisor.testing``.

Imports are read with ``ast`` (every ``import`` statement, wherever it is, TYPE_CHECKING ones too);
the few that go up anyway are listed in ``UPWARD`` with the reason. Module-level imports must also form
no cycle: a module that needs another which needs it back is one module, or a seam is missing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: import-package prefix -> folder in the repository (pyproject.toml's package-dir)
FOLDERS = {
    "mcpvisor.runtime": ROOT / "runtime",
    "mcpvisor.supervisors": ROOT / "supervisors",
    "mcpvisor.backends": ROOT / "backends",
    "mcpvisor": ROOT / "mcpvisor",
}
LAYERS: list[tuple[str, ...]] = [
    ("supervisors", "backends"),
    ("runtime.actors", "runtime.protocol", "runtime.auth"),
    ("runtime.server",),
    ("runtime.tree",),
    ("runtime.transports",),
    ("mcpvisor",),
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}

#: (importing file, imported package): why this one import goes up
UPWARD = {
    ("runtime/server/_server.py", "runtime.transports"): (
        "Server.run() is the authoring API's one call into the stack (blocking serve); it imports the "
        "runner inside the method, so importing the authoring API never loads a transport"
    ),
    ("runtime/server/__init__.py", "runtime.tree"): (
        "the runtime's names were importable from mcpvisor.runtime.server before the split: resolved on "
        "first use (a module __getattr__), for code that still imports them from there"
    ),
}

#: files over the size limit whose reason lives here rather than in their docstring
LONG_ELSEWHERE: dict[str, str] = {}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    """Dotted module name (``mcpvisor.runtime.tree._runtime``) -> file, for every source file."""
    found: dict[str, Path] = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    """The layer package of a dotted module name: ``runtime.tree``, ``supervisors``, ``mcpvisor``..."""
    parts = module.split(".")[1:]  # drop "mcpvisor"
    if not parts or parts[0] not in ("runtime", "supervisors", "backends"):
        return "mcpvisor"
    if parts[0] == "runtime":
        return "runtime." + parts[1] if len(parts) > 1 else "runtime"
    return parts[0]


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The absolute modules one ``from ... import ...`` reads (a submodule when a name is one)."""
    if node.level:
        base = module.split(".") if _is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [f"{target}.{alias.name}" for alias in node.names]
    subs = [n for n in names if n in MODULES]
    return subs if subs else [target]


def _imports(module: str, *, top_level_only: bool) -> list[tuple[str, int]]:
    """(imported mcpvisor module, line) for each import in ``module``; with ``top_level_only``, only the
    imports run when the module loads (not in a function, not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_level_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if top_level_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom):
                found.extend((m, child.lineno) for m in _resolve(module, child))
            elif isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            visit(child)

    visit(tree)
    return [(m, line) for m, line in found if m == "mcpvisor" or m.startswith("mcpvisor.")]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_every_code_folder_is_in_a_layer() -> None:
    packages = {_package_of(m) for m in MODULES} - {"runtime"}
    assert packages - set(RANK) == set()
    assert len(MODULES) > 100


def test_supervisors_and_backends_import_nothing_from_the_runtime() -> None:
    wrong = [
        f"{_rel(MODULES[m])}:{line} imports {target}"
        for m in MODULES
        if _package_of(m) in ("supervisors", "backends")
        for target, line in _imports(m, top_level_only=False)
        if target.startswith("mcpvisor.runtime") or _package_of(target) == "mcpvisor"
    ]
    assert wrong == []


def test_protocol_imports_no_transport_server_tree_or_actor_module() -> None:
    wrong = [
        f"{_rel(MODULES[m])}:{line} imports {target}"
        for m in MODULES
        if _package_of(m) == "runtime.protocol"
        for target, line in _imports(m, top_level_only=False)
        if _package_of(target) in ("runtime.transports", "runtime.server", "runtime.tree", "runtime.actors")
    ]
    assert wrong == []


def test_no_module_imports_from_a_layer_above_it_or_beside_it() -> None:
    wrong: list[str] = []
    used: set[tuple[str, str]] = set()
    for m in MODULES:
        mine = _package_of(m)
        if mine == "runtime":
            continue  # runtime/__init__.py is a docstring
        for target, line in _imports(m, top_level_only=False):
            theirs = _package_of(target)
            if theirs == mine or (target in ("mcpvisor", "mcpvisor.runtime") and mine == "mcpvisor"):
                continue
            if RANK.get(theirs, len(LAYERS)) < RANK[mine]:
                continue
            key = (_rel(MODULES[m]), theirs)
            if key in UPWARD:
                used.add(key)
                continue
            wrong.append(f"{key[0]}:{line} ({mine}) imports {target} ({theirs})")
    assert wrong == []
    assert used == set(UPWARD), "an exception no longer needed: remove it from UPWARD"


def test_module_level_imports_form_no_cycle() -> None:
    graph = {m: {t for t, _ in _imports(m, top_level_only=True) if t in MODULES and t != m} for m in MODULES}
    # a package's __init__ importing its own submodules, and those importing siblings through the
    # package, is how a package re-exports, not a cycle between two jobs: keep submodule edges only
    for m in graph:
        graph[m] = {t for t in graph[m] if not (_is_package(t) and m.startswith(t + "."))}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert cycles == []


@pytest.mark.parametrize("folder", ["runtime", "supervisors", "backends"])
def test_no_long_file_without_a_reason(folder: str) -> None:
    long: list[str] = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines <= MAX_LINES or _rel(path) in LONG_ELSEWHERE:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "\nLength: " not in f"\n{doc}":
            long.append(f"{_rel(path)} ({lines} lines): split it, or say why in a 'Length: ' docstring line")
    assert long == []
