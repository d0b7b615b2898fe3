"""The official SDK's ClientSession against the runtime in-process (``open_sdk_streams``)."""

from __future__ import annotations

from typing import Any

import pytest
from _runtime_app import app
from mcp import ClientSession
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import open_sdk_streams


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_sdk_session_in_memory_with_state_and_restart() -> None:
    async with start_server(app) as running:
        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "runtime-tests"
            assert {t.name for t in (await session.list_tools()).tools} >= {"counter", "crash"}
            assert _text(await session.call_tool("counter", {})) == "1"
            with pytest.raises(Exception, match="session crashed"):
                await session.call_tool("crash", {})
            assert _text(await session.call_tool("counter", {})) == "2"
            (sid,) = running.session_ids()
            assert running.session_incarnations(sid) == 2
        assert running.session_ids() == []  # leaving the streams closed the session
