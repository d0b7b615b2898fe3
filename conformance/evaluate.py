"""Judge one run of the MCP conformance suite against what docs/conformance.md promises.

The suite writes one ``server-<scenario>-<timestamp>/checks.json`` per scenario and its own exit code
says only "something failed". CI needs a narrower question answered: did a scenario we *claim* passes
stop passing? ``conformance/expected.json`` holds the claims (and docs/conformance.md mirrors it), so a
scenario still listed as "not yet" may fail without failing CI, and one we claim must pass.

Usage: ``python conformance/evaluate.py RAW_DIR VERSION SUMMARY_JSON [SCENARIO]`` (``.ci/conformance``
calls it; SCENARIO judges that scenario alone);
``python conformance/evaluate.py --table`` prints the docs tables from expected.json.
Exit status: 0 when every expected-pass scenario passed, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

EXPECTED_FILE: Final = Path(__file__).with_name("expected.json")
PASS: Final = "pass"
NOT_YET: Final = "not yet"
STATUSES: Final = (PASS, NOT_YET)

#: Added to every scenario by the suite; it passes even against a server that never answered, so it
#: cannot count as evidence that a scenario passed.
_WIRE_CHECK: Final = "wire-schema-valid"
_DIR_NAME: Final = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def load_expected(path: Path = EXPECTED_FILE) -> dict[str, dict[str, dict[str, str]]]:
    """``{version: {scenario: {"status": ..., "reason": ...}}}``, validated.

    A malformed file is a ValueError naming the entry: it is the contract CI enforces, so a typo in it
    must not silently turn a claim into "not yet".
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    versions = data.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise ValueError(f"{path}: needs a non-empty 'versions' object")
    for version, scenarios in versions.items():
        for name, entry in scenarios.items():
            status = entry.get("status")
            if status not in STATUSES:
                raise ValueError(
                    f"{path}: {version}/{name}: status must be one of {STATUSES}, not {status!r}"
                )
            if status == NOT_YET and not entry.get("reason"):
                raise ValueError(f"{path}: {version}/{name}: a 'not yet' needs a reason")
    return versions


def scenario_outcome(checks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One scenario's verdict from its checks.

    "pass" needs no FAILURE and at least one SUCCESS besides the wire-schema check; WARNING (a SHOULD
    the server did not meet) is counted but does not fail a scenario.
    """
    counts: dict[str, int] = {}
    for check in checks:
        status = str(check.get("status", "UNKNOWN"))
        counts[status] = counts.get(status, 0) + 1
    failures = [
        f"{c.get('id')}: {c.get('errorMessage') or c.get('description')}"
        for c in checks
        if c.get("status") == "FAILURE"
    ]
    warnings = [
        f"{c.get('id')}: {c.get('errorMessage') or c.get('description')}"
        for c in checks
        if c.get("status") == "WARNING"
    ]
    real_success = any(c.get("status") == "SUCCESS" and c.get("id") != _WIRE_CHECK for c in checks)
    return {
        "result": PASS if real_success and not failures else "fail",
        "counts": counts,
        "failures": failures,
        "warnings": warnings,
    }


def read_raw(raw_dir: Path) -> dict[str, dict[str, Any]]:
    """Each scenario's outcome from the suite's output directory (latest run of a scenario wins)."""
    outcomes: dict[str, dict[str, Any]] = {}
    for entry in sorted(raw_dir.iterdir()) if raw_dir.is_dir() else []:
        match = _DIR_NAME.match(entry.name)
        checks_file = entry / "checks.json"
        if match is None or not checks_file.is_file():
            continue
        checks = json.loads(checks_file.read_text(encoding="utf-8"))
        outcomes[match["scenario"]] = scenario_outcome(checks)
    return outcomes


def judge(
    version: str, outcomes: Mapping[str, Mapping[str, Any]], expected: Mapping[str, Mapping[str, str]]
) -> tuple[list[str], list[str]]:
    """(regressions, surprises): claimed passes that did not pass; "not yet"s that now pass.

    A claimed scenario the suite did not run at all (timeout, renamed) is a regression too.
    """
    regressions: list[str] = []
    surprises: list[str] = []
    for name, entry in sorted(expected.items()):
        got = outcomes.get(name)
        passed = got is not None and got["result"] == PASS
        if entry["status"] == PASS and not passed:
            why = "did not run" if got is None else "; ".join(got["failures"]) or "no successful check"
            regressions.append(f"{version} {name}: expected pass, {why}")
        elif entry["status"] == NOT_YET and passed:
            surprises.append(
                f"{version} {name}: now passes; mark it pass in expected.json and the docs "
                "unless its reason says why this pass is hollow"
            )
    for name in sorted(set(outcomes) - set(expected)):
        surprises.append(f"{version} {name}: ran but is not listed in expected.json")
    return regressions, surprises


def markdown_table(scenarios: Mapping[str, Mapping[str, str]]) -> str:
    """The docs/conformance.md table for one spec version (``--table`` prints them for pasting)."""
    lines = ["| scenario | status | reason |", "|---|---|---|"]
    for name, entry in scenarios.items():
        reason = entry.get("reason", "").replace("|", "\\|")
        lines.append(f"| `{name}` | {entry['status']} | {reason} |")
    return "\n".join(lines)


def main(argv: Sequence[str], expected_file: Path = EXPECTED_FILE) -> int:
    if list(argv) == ["--table"]:
        for version, scenarios in load_expected(expected_file).items():
            print(f"### {version}\n\n{markdown_table(scenarios)}\n")
        return 0
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    raw_dir, version, summary_path = Path(argv[0]), argv[1], Path(argv[2])
    expected = load_expected(expected_file).get(version)
    if expected is None:
        print(f"evaluate: no expectations for spec version {version}", file=sys.stderr)
        return 2
    if len(argv) == 4:  # one scenario was run on purpose: the others are not missing
        expected = {name: entry for name, entry in expected.items() if name == argv[3]}
    outcomes = read_raw(raw_dir)
    if len(argv) == 4:
        outcomes = {name: outcome for name, outcome in outcomes.items() if name == argv[3]}
    regressions, surprises = judge(version, outcomes, expected)
    summary = {
        "version": version,
        "scenarios": {
            name: {"expected": expected.get(name, {}).get("status"), **outcome}
            for name, outcome in sorted(outcomes.items())
        },
        "regressions": regressions,
        "surprises": surprises,
    }
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    passed = sum(1 for o in outcomes.values() if o["result"] == PASS)
    for name in sorted(set(expected) | set(outcomes)):
        outcome = outcomes.get(name)
        result = "missing" if outcome is None else outcome["result"]
        claim = expected.get(name, {}).get("status", "unlisted")
        note = f" ({len(outcome['warnings'])} warning(s))" if outcome and outcome["warnings"] else ""
        print(f"  {result:7} {name}  [expected: {claim}]{note}")
    for line in surprises:
        print(f"  note: {line}")
    for line in regressions:
        print(f"  REGRESSION: {line}")
    print(f"conformance {version}: {passed} of {len(outcomes)} scenarios pass")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
