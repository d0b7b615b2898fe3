"""The runnable examples of the runtime's sections of docs/server.md run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

# this test's sections of the page (the other sections have their own test)
BLOCKS = python_blocks("server.md", ("Running a server", "Supervision and crash recovery"))


def test_the_sections_have_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"docs/server.md#runtime-example{index}", f"server_runtime_doc_example_{index}")
