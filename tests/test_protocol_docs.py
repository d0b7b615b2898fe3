"""The runnable examples in docs/protocol.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

BLOCKS = python_blocks("protocol.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"docs/protocol.md#example{index}", f"protocol_doc_example_{index}")
