"""The runnable examples in docs/server.md (the sections this package owns) run and their assertions hold."""

from __future__ import annotations

import pytest
from _doc_examples import python_blocks, run_block

# this test's sections of the page (the other sections have their own test)
BLOCKS = python_blocks(
    "server.md", ("Writing a server", "The Context", "State handles", "Asking for input in rounds")
)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"docs/server.md#example{index}", f"server_doc_example_{index}")
