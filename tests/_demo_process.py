"""The demo server as a real process (``python -m mcpvisor demo ...``), for the tests that need one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANNER = "mcpvisor: serving"


def start_demo(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``mcpvisor demo`` with ``args`` and wait (bounded) for the URL it prints on stderr.

    The caller stops the process by pid; stderr stays open for it to read the rest of the log.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpvisor", "demo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    for _ in range(200):  # the banner comes within a few lines
        line = proc.stderr.readline()
        if BANNER in line or not line:
            break
    if BANNER not in line:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"the demo server did not start (last line: {line!r})")
    return proc, line.rsplit(" ", 1)[1].strip()


def stop_demos(procs: Iterable[subprocess.Popen[str]]) -> None:
    """Stop demo processes by pid: SIGTERM to every live one first (they stop in parallel), then wait
    for each, SIGKILL if it is not gone within 10 s; close the stderr ``start_demo`` left open."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
