"""The demo MCP server (``mcpvisor demo``): state, progress, and a crash you can watch recover.

- ``counter``: adds one to a number kept in state (it survives the crash below): the session's for a
  2025-11-25 client; for a 2026-07-28 client, which has no session, a state handle's (the first call
  opens one and names it in its answer; pass it back as ``handle``);
- ``slow``: counts to ``steps`` with a progress notification per step;
- ``crash``: raises ``CrashSession``; the log on stderr shows the session's (or the handle's) actor exit
  and restart under the same id, and the next ``counter`` call carries on from the stored value.
- ``long_job``: a background task (``task="optional"``; docs/tasks.md): call it as a task, crash the
  session meanwhile, and the task still finishes and its result can still be collected.
"""

from __future__ import annotations

import trio

from ._context import Context
from ._errors import CrashSession
from ._server import Server
from ._state_handle import StateHandle

server = Server(
    "mcpvisor-demo",
    instructions="Call counter a few times, then crash, then counter again: the count survives the restart.",
)


@server.tool()
async def counter(ctx: Context, handle: StateHandle | None = None) -> str:
    """Add one to a counter and return it: the session's, or the state handle's given as `handle`.

    Without a session (2026-07-28) and without a handle, opens a new handle (it lasts 24 h) and names
    it in the answer: pass it back as `handle` to keep counting.
    """
    if handle is None and ctx.session_id is None:
        await ctx.open_handle()
    # One atomic step in the state store: concurrent calls never lose a count (get then set could).
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
    return f"count = {count} ({_owner(ctx)})"


def _owner(ctx: Context) -> str:
    return f"handle {ctx.handle}" if ctx.handle is not None else f"session {ctx.session_id}"


@server.tool()
async def slow(ctx: Context, steps: int = 5, delay: float = 0.5) -> str:
    """Count to ``steps``, ``delay`` seconds apart, reporting progress each step."""
    for step in range(1, steps + 1):
        await trio.sleep(delay)
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"finished {steps} steps"


@server.tool()
async def crash(ctx: Context, handle: StateHandle | None = None) -> str:
    """Crash this session's actor on purpose (without a session: the actor of the state handle given
    as `handle`); its supervisor restarts it under the same id, with its values."""
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
