"""The runnable examples in docs/supervision.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import DOCS, python_blocks, run_block

DOC = DOCS / "supervision.md"
BLOCKS = python_blocks("supervision.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    run_block(BLOCKS[index], f"docs/supervision.md#example{index}", f"supervision_doc_example_{index}")
    out = capsys.readouterr().out
    assert "Traceback" not in out


def test_every_public_name_is_documented() -> None:
    import mcpvisor.supervisors as sup

    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in sup.__all__ if f"`{name}" not in text and f"{name}(" not in text]
    assert missing == []


def test_the_index_links_every_docs_page() -> None:
    docs = DOC.parent
    index = (docs / "index.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in docs.glob("*.md") if p.name != "index.md")
    assert "supervision.md" in pages
    assert [p for p in pages if f"({p})" not in index] == []
