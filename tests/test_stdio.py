"""The stdio transport, driven by the official ``mcp`` SDK client against a real subprocess."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parent.parent


def _demo_params() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpvisor", "run", "mcpvisor.runtime.server.demo:server", "--transport", "stdio"],
        cwd=str(ROOT),
    )


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_sdk_client_over_stdio_state_progress_and_crash_restart(tmp_path: Path) -> None:
    errlog = (tmp_path / "stderr.log").open("w+")
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with (
        stdio_client(_demo_params(), errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        assert init.server_info.name == "mcpvisor-demo"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"counter", "slow", "crash"} <= names
        assert _text(await session.call_tool("counter", {})).startswith("count = 1 ")
        assert _text(await session.call_tool("counter", {})).startswith("count = 2 ")
        slow = await session.call_tool("slow", {"steps": 3, "delay": 0.01}, progress_callback=on_progress)
        assert _text(slow) == "finished 3 steps"
        assert progress == [(1, 3), (2, 3), (3, 3)]
        with pytest.raises(Exception, match="session crashed"):
            await session.call_tool("crash", {})
        # same session, restarted: the stored count carries on
        assert _text(await session.call_tool("counter", {})).startswith("count = 3 ")
    errlog.seek(0)
    log = errlog.read()
    assert "ChildRestarted(supervisor='session " in log
    assert "resumed" in log
