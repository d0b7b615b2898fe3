"""The ``mcpvisor`` command line: target loading and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcpvisor.cli import TargetError, load_target

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpvisor", *args], capture_output=True, text=True, timeout=30, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("does/not/exist.py:server", "no such file"),
        ("mcpvisor.runtime.server.demo:nothing", "has no attribute 'nothing'"),
        ("json:dumps", "not an mcpvisor Server"),
        ("no_such_module_xyz:server", "cannot import module"),
    ],
)
def test_bad_target_is_a_clear_error_and_exit_2(target: str, expected: str) -> None:
    done = _run("run", target)
    assert done.returncode == 2
    assert expected in done.stderr and "bad target" in done.stderr
    assert done.stdout == ""


def test_load_target_from_file_and_module(tmp_path: Path) -> None:
    app = tmp_path / "my_app.py"
    app.write_text("from mcpvisor import Server\nserver = Server('from-file')\nother = Server('other')\n")
    assert load_target(f"{app}:server").name == "from-file"
    assert load_target(f"{app}:other").name == "other"
    assert load_target(str(app)).name == "from-file"  # the attribute defaults to `server`
    assert load_target("mcpvisor.runtime.server.demo:server").name == "mcpvisor-demo"
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(TargetError, match="boom at import"):
        load_target(f"{broken}:server")


def test_bad_backend_url_exits_2() -> None:
    done = _run("run", "mcpvisor.runtime.server.demo:server", "--state-store", "nosuch://x")
    assert done.returncode == 2 and "unknown scheme" in done.stderr


def test_stdio_eof_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "demo", "--transport", "stdio"],
        input='{"jsonrpc":"2.0","id":1,"method":"ping"}\n',
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 0
    assert done.stdout == '{"jsonrpc":"2.0","id":1,"result":{}}\n'  # ping is served before initialize
