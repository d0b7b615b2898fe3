"""The runnable examples in docs/tasks.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

BLOCKS = python_blocks("tasks.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"docs/tasks.md#example{index}", f"tasks_doc_example_{index}")
