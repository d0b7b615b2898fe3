"""One meaning per word: no two classes share a name, loggers are named after their package, and
``serve_http`` takes ``serve``'s names for the same things (its former ones still work)."""

from __future__ import annotations

import ast
import collections
import re
from pathlib import Path

import pytest

import mcpvisor

ROOT = Path(__file__).resolve().parent.parent
CODE = ["runtime", "supervisors", "backends", "mcpvisor"]


def _sources() -> list[Path]:
    return [p for folder in CODE for p in sorted((ROOT / folder).rglob("*.py"))]


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = collections.defaultdict(list)
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where[node.name.lstrip("_")].append(path.relative_to(ROOT).as_posix())
    twins = {name: files for name, files in where.items() if len(files) > 1}
    assert twins == {}


def _package_logger(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "runtime":
        return f"mcpvisor.runtime.{parts[1]}"
    return "mcpvisor" if parts[0] == "mcpvisor" else f"mcpvisor.{parts[0]}"


def test_every_logger_is_named_after_its_package() -> None:
    wrong = []
    for path in _sources():
        for name in re.findall(r'getLogger\("([^"]+)"\)', path.read_text(encoding="utf-8")):
            if name != _package_logger(path):
                wrong.append(
                    f"{path.relative_to(ROOT)}: {name!r} (its package logs as {_package_logger(path)!r})"
                )
    assert wrong == []


async def test_serve_http_takes_serve_s_names_and_still_its_former_ones() -> None:
    import trio

    async with mcpvisor.start_server(mcpvisor.Server("names")) as running:
        with pytest.raises(TypeError, match="former name of 'port'"):
            await mcpvisor.serve_http(running, port=0, port_number=0)
        with pytest.raises(TypeError, match="former name of 'http_server'"):
            await mcpvisor.serve_http(running, http_server="h11", server="h11")
        for kwargs in ({"port": 0, "http_server": "h11"}, {"port_number": 0, "server": "h11"}):
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(
                    lambda task_status, kw=kwargs: mcpvisor.serve_http(running, task_status=task_status, **kw)
                )
                assert bound > 0
                nursery.cancel_scope.cancel()
