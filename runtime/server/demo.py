"""The demo MCP server (``mcpvisor demo``): session state, progress, and a crash you can watch recover.

- ``counter``: adds one to a number kept in session state (it survives the crash below);
- ``slow``: counts to ``steps`` with a progress notification per step;
- ``crash``: raises ``CrashSession``; the log on stderr shows the session actor exit and restart under
  the same id, and the next ``counter`` call carries on from the stored value.
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
    # One atomic step in the state store: concurrent calls never lose a count (get then set could).
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
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


if __name__ == "__main__":
    server.run()
