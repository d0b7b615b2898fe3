"""The documented custom backend (examples/custom_backend.py) passes the conformance kit."""

from __future__ import annotations

import atexit
import importlib.util
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

from mcpvisor.backends import SessionStateStore, TaskBackend
from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance

_path = Path(__file__).resolve().parent.parent / "examples" / "custom_backend.py"
_spec = importlib.util.spec_from_file_location("custom_backend_example", _path)
assert _spec is not None and _spec.loader is not None
custom = importlib.util.module_from_spec(_spec)
sys.modules["custom_backend_example"] = custom
_spec.loader.exec_module(custom)

_root = Path(tempfile.mkdtemp(prefix="mcpvisor-kit-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)  # the kit's classes are built at import
_numbers = itertools.count()


def _fresh_dir() -> Path:
    return _root / str(next(_numbers))


def _remove(backend: object) -> None:
    shutil.rmtree(backend._dir, ignore_errors=True)  # type: ignore[attr-defined]


TestFileSessionStore = session_store_conformance(
    lambda clock: custom.FileSessionStore(_fresh_dir(), clock=clock), cleanup=_remove
)
TestFileTaskBackend = task_backend_conformance(
    lambda clock: custom.FileTaskBackend(_fresh_dir(), clock=clock), cleanup=_remove
)


def test_custom_classes_satisfy_the_protocols(tmp_path: Path) -> None:
    assert isinstance(custom.FileSessionStore(tmp_path / "s"), SessionStateStore)
    assert isinstance(custom.FileTaskBackend(tmp_path / "t"), TaskBackend)


def test_example_script_runs(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, str(_path), str(tmp_path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "greeting: b'hello'" in out and "task: task-1 working version 1" in out
