"""A small server the runtime tests share: state, slow and crashing tools, logs, elicitation."""

from __future__ import annotations

import trio
from mcpvisor.runtime.server import Context, CrashSession, Server

app = Server("runtime-tests")
#: Set by tests to release the ``wait`` tool.
release = trio.Event()


@app.tool()
async def counter(ctx: Context) -> int:
    n: int = await ctx.get_state("n", 0) + 1
    await ctx.set_state("n", n)
    return n


@app.tool()
async def version(ctx: Context) -> str:
    return ctx.protocol_version


@app.tool()
async def wait(ctx: Context, seconds: float = 3600.0) -> str:
    await ctx.report_progress(0, 1)
    await trio.sleep(seconds)
    return "done"


@app.tool()
async def fail(ctx: Context) -> str:
    raise RuntimeError("secret internals")


@app.tool()
async def crash(ctx: Context) -> str:
    raise CrashSession("on purpose")


@app.tool()
async def chatty(ctx: Context) -> str:
    await ctx.info("an info line")
    await ctx.error("an error line")
    return "ok"


@app.tool()
async def ask(ctx: Context) -> str:
    answer = await ctx.elicit("name?", {"type": "object", "properties": {"name": {"type": "string"}}})
    return str(answer["content"]["name"])


@app.resource("memo://one")
async def memo() -> str:
    return "one"


@app.tool()
async def detach(ctx: Context) -> str:
    await ctx.report_progress(1, 2)
    await ctx.close_sse_stream()  # HTTP only: the other transports drop it
    return "still here"
