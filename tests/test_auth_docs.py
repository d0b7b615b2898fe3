"""docs/auth.md runs as written: its Python example, and examples/auth_server.py (the whole story:
401 with the metadata pointer, the metadata, Alice through the official SDK client, 403 for a
missing scope), whose output the page quotes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "auth.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": f"auth_doc_example_{index}"}
    exec(compile(BLOCKS[index], f"docs/auth.md#example{index}", "exec"), namespace)


def test_the_example_server_runs_as_written() -> None:
    done = subprocess.run(
        [sys.executable, "examples/auth_server.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        'no token: 401 Bearer scope="notes:read", resource_metadata="http://127.0.0.1:'
    )
    assert lines[0].endswith('/.well-known/oauth-protected-resource/mcp"')
    assert lines[1].startswith("metadata: {'resource': 'http://127.0.0.1:")
    assert "'scopes_supported': ['notes:read', 'notes:write']" in lines[1]
    assert lines[2] == "whoami: alice (client notes-cli, scopes notes:read notes:write)"
    assert lines[3] == "add_note: 1"
    assert lines[4].startswith('without notes:write: 403 Bearer error="insufficient_scope"')
    assert 'scope="notes:read notes:write"' in lines[4]
    # The page quotes these lines.
    page = DOC.read_text(encoding="utf-8")
    for quoted in (lines[2], lines[3], 'no token: 401 Bearer scope="notes:read"'):
        assert quoted in page


def test_the_page_is_linked() -> None:
    assert "(auth.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert "docs/auth.md" in (ROOT / "README.md").read_text(encoding="utf-8")
