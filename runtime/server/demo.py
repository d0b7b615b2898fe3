"""The demo MCP server (``mcpvisor demo``): session state, progress, and a crash you can watch recover.

- ``counter``: adds one to a number kept in session state (it survives the crash below);
- ``slow``: counts to ``steps`` with a progress notification per step;
- ``crash``: raises ``CrashSession``; the log on stderr shows the session actor exit and restart under
  the same id, and the next ``counter`` call carries on from the stored value.
- ``long_job``: a background task (``task="optional"``; docs/tasks.md): call it as a task, crash the
  session meanwhile, and the task still finishes and its result can still be collected.
"""

from __future__ import annotations

import trio

from ._context import Context
from ._errors import CrashSession
from ._server import Server

server = Server(
    "mcpvisor-demo",
    instructions="Call counter a few times, then crash, then counter again: the count survives the restart.",
)


@server.tool()
async def counter(ctx: Context) -> str:
    """Add one to this session's counter and return it."""
    count: int = await ctx.get_state("count", 0) + 1
    await ctx.set_state("count", count)
    return f"count = {count} (session {ctx.session_id})"


@server.tool()
async def slow(ctx: Context, steps: int = 5, delay: float = 0.5) -> str:
    """Count to ``steps``, ``delay`` seconds apart, reporting progress each step."""
    for step in range(1, steps + 1):
        await trio.sleep(delay)
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"finished {steps} steps"


@server.tool()
async def crash(ctx: Context) -> str:
    """Crash this session's actor on purpose; its supervisor restarts it under the same id."""
    raise CrashSession("the demo's crash tool was called")


@server.tool(task="optional")
async def long_job(ctx: Context, steps: int = 10, delay: float = 1.0) -> str:
    """Work ``steps`` steps, ``delay`` seconds apart, as a background task when the client asks;
    it runs under the server's TaskSupervisor, so crashing the session does not stop it."""
    for step in range(1, steps + 1):
        await trio.sleep(delay)
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"long job done after {steps} steps"


if __name__ == "__main__":
    server.run()
