"""The runnable examples in docs/actors.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

BLOCKS = python_blocks("actors.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    run_block(BLOCKS[index], f"docs/actors.md#example{index}", f"actors_doc_example_{index}")
