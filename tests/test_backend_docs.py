"""Every code block in docs/backends.md runs, and its assertions hold.

Each block runs on its own in a fresh namespace, in a temporary working directory (the SQLite block
writes ``state.db``), with ``examples/`` importable (the kit block imports the custom backend) and
``REDIS_URL`` pointing at the private redis-server. A block that defines conformance TestCases has them
run too, with a few examples only: the full default runs live in test_backend_kit_*.py. The copy of
examples/custom_backend.py in the page must be the file itself.
"""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

import pytest
from _doc_examples import ROOT, python_blocks, run_block
from hypothesis import settings

EXAMPLE = ROOT / "examples" / "custom_backend.py"
BLOCKS = python_blocks("backends.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 9


def test_the_page_shows_the_whole_custom_backend() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") in BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    block = BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    if "REDIS_URL" in block:
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_server"))
    namespace = run_block(block, f"docs/backends.md#example{index}", f"backends_doc_example_{index}")
    cases = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, unittest.TestCase)]
    assert len(cases) == block.count("_conformance("), "every kit call in the block must be run"
    for case in cases:
        case.settings = settings(case.settings, max_examples=3, stateful_step_count=15)  # type: ignore[attr-defined]
        result = unittest.TestResult()
        case("runTest").run(result)
        assert result.wasSuccessful(), (result.failures + result.errors)[0][1]
    sys.modules.pop("custom_backend", None)
