"""The server ``.ci/ts-sdk-tasks`` drives with the official TypeScript SDK client (2025-11-25 tasks).

Task tools for each check (create/poll/result, list paging, cancel, a failing body, input_required,
surviving the session's crash), on a free loopback port; prints ``serving <url>`` once it listens.
A short poll interval keeps the SDK's polling loop quick.

    python ts-sdk/tasks_server.py --port 0 [--task-backend sqlite:///t.db]
"""

from __future__ import annotations

import argparse
import functools

import trio
from mcpvisor.runtime.transports.http import serve_http

from mcpvisor import Context, CrashSession, Server, ToolError, start_server

server = Server("ts-sdk-tasks")


@server.tool(task="optional")
async def add(a: int, b: int) -> int:
    """A quick task."""
    return a + b


@server.tool(task="optional")
async def slow(seconds: float, ctx: Context) -> str:
    """Sleeps, reporting progress; cancelling the task cancels the sleep."""
    await ctx.report_progress(0, seconds)
    await trio.sleep(seconds)
    return f"slept {seconds:g}s"


@server.tool(task="required")
async def failing() -> str:
    """Always a tool error (the task ends failed, 2025-11-25)."""
    raise ToolError("failing always fails")


@server.tool(task="optional")
async def ask_name(ctx: Context) -> str:
    """Elicits a name: the task is input_required until the client answers."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    answer = await ctx.elicit("What is your name?", schema)
    return f"hello {answer['content']['name']}"


@server.tool()
async def crash() -> str:
    """Crashes this session's actor (it is restarted under the same id)."""
    raise CrashSession("the ts-sdk check's crash tool")


async def main(host: str, port: int, task_backend: str) -> None:
    async with (
        start_server(server, task_backend=task_backend, task_poll_interval=0.05) as running,
        trio.open_nursery() as nursery,
    ):
        bound = await nursery.start(functools.partial(serve_http, running, host=host, port_number=port))
        print(f"serving http://{host}:{bound}/mcp", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--task-backend", default="memory://")
    args = parser.parse_args()
    trio.run(main, args.host, args.port, args.task_backend)
