"""``run_server``: serve a ``Server`` from the command line or ``Server.run`` (blocking, ``trio.run``).

Logs go to stderr (stdout belongs to the stdio transport), at INFO, so supervision events (a session
crashing and being restarted) are visible as they happen.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import trio
from mcpvisor.backends import SessionStateStore, TaskBackend

from ._runtime import start_server

TRANSPORTS = ("stdio", "http")


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record to stderr unless the application configured logging itself."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)


async def serve(
    server: Any,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    session_state_store: str | SessionStateStore = "memory://",
    task_backend: str | TaskBackend = "memory://",
    task_status: trio.TaskStatus[str | None] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run ``server`` on ``transport`` until the transport ends (stdio EOF) or the caller cancels.

    ``task_status.started`` gets the HTTP URL (None for stdio).
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}: use one of {', '.join(TRANSPORTS)}")
    async with start_server(
        server, session_state_store=session_state_store, task_backend=task_backend, **options
    ) as running:
        if transport == "stdio":
            from ..transports.stdio import serve_stdio

            task_status.started(None)
            await serve_stdio(running)
            return
        from ..transports.http import serve_http

        async with trio.open_nursery() as nursery:
            bound: int = await nursery.start(
                functools.partial(serve_http, running, host=host, port_number=port)
            )
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{bound}/mcp"
            print(
                f"mcpvisor: serving {getattr(server, 'name', 'MCP server')} at {url}",
                file=sys.stderr,
                flush=True,
            )
            task_status.started(url)


def run_server(
    server: Any,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    session_state_store: str | SessionStateStore = "memory://",
    task_backend: str | TaskBackend = "memory://",
    **options: Any,
) -> None:
    """Serve until stdin ends (stdio) or Ctrl-C; blocking."""
    configure_logging()
    try:
        trio.run(
            functools.partial(
                serve,
                server,
                transport=transport,
                host=host,
                port=port,
                session_state_store=session_state_store,
                task_backend=task_backend,
                **options,
            )
        )
    except* KeyboardInterrupt:  # bare, or inside the groups of the nurseries it crossed
        logging.getLogger("mcpvisor.runtime.server").info("interrupted: stopped")
