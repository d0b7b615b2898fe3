"""The runnable examples in docs/http.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

BLOCKS = python_blocks("http.md")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"docs/http.md#example{index}", f"http_doc_example_{index}")
