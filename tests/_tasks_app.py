"""A server whose tools run as background tasks, shared by the task tests."""

from __future__ import annotations

from typing import Any

import trio
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import Context, CrashSession, Server, ToolError

app = Server("tasks-tests")

#: How many steps ``spin`` has done (a cancelled body must stop adding to it).
spin_steps: list[int] = [0]
#: Set by tests to let ``gate`` finish.
gates: dict[str, trio.Event] = {}


@app.tool(task="optional")
async def add(a: int, b: int) -> int:
    return a + b


@app.tool(task="required")
async def gate(name: str, ctx: Context) -> str:
    """Waits until the test sets gates[name]; reports progress first."""
    await ctx.report_progress(1, 2, "waiting at the gate")
    event = gates.setdefault(name, trio.Event())
    await event.wait()
    return f"passed {name}"


@app.tool(task="optional")
async def spin(ctx: Context) -> str:
    while True:
        spin_steps[0] += 1
        await trio.sleep(0.01)


@app.tool(task="optional")
async def tool_error() -> str:
    raise ToolError("the job could not be done")


@app.tool(task="optional")
async def rpc_error() -> str:
    raise JsonRpcError(-32602, "bad job parameters", {"field": "job"})


@app.tool(task="optional")
async def ask_name(ctx: Context) -> str:
    answer: dict[str, Any] = await ctx.elicit("Your name?", {"type": "object", "properties": {}})
    return f"hello {answer['content']['name']}"


@app.tool(task="optional")
async def remember(ctx: Context, value: int) -> int:
    await ctx.set_state("remembered", value)
    return int(await ctx.get_state("remembered"))


@app.tool()
async def plain() -> str:
    return "plain"


@app.tool()
async def crash() -> str:
    raise CrashSession("on purpose")
