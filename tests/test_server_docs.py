"""The runnable examples in docs/server.md (the sections this package owns) run and their assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "server.md"
# this package's sections (the runtime's have their own test)
OURS = ("Writing a server", "The Context", "State handles", "Asking for input in rounds")


def _our_sections(text: str) -> str:
    sections = re.split(r"^## ", text, flags=re.M)
    return "\n".join(s for s in sections if s.startswith(OURS))


BLOCKS = re.findall(r"```python\n(.*?)```", _our_sections(DOC.read_text(encoding="utf-8")), re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": f"server_doc_example_{index}"}
    exec(compile(BLOCKS[index], f"docs/server.md#example{index}", "exec"), namespace)
