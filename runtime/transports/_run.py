"""``run_server``: serve a ``Server`` from the command line or ``Server.run`` (blocking, ``trio.run``).

Logs go to stderr (stdout belongs to the stdio transport), at INFO, so supervision events (a session
crashing and being restarted) are visible as they happen.
"""

from __future__ import annotations

import functools
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
from mcpvisor.backends import SessionStateStore, TaskBackend
from mcpvisor.supervisors._lone_error import lone_error

from ..tree._runtime import start_server
from ..tree._served_server import ServedServer
from .http import open_listeners, serve_http
from .stdio import serve_stdio

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
    server: ServedServer,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    session_state_store: str | SessionStateStore = "memory://",
    task_backend: str | TaskBackend = "memory://",
    stop: trio.Event | None = None,
    http_server: str = "h11",
    http_options: Mapping[str, Any] | None = None,
    freeze_after_start: bool = False,
    task_status: trio.TaskStatus[str | None] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run ``server`` on ``transport`` until the transport ends (stdio EOF), ``stop`` is set, or the
    caller cancels. ``task_status.started`` gets the HTTP URL (None for stdio). ``http_server`` picks
    the HTTP server (``"h11"`` or ``"hypercorn"``, see ``serve_http``); ``http_options`` are more of
    ``serve_http``'s keywords (its connection limits: ``max_connections``, ``body_timeout``...).

    ``freeze_after_start`` (for the owner of the process: ``run_server`` sets it) moves what start-up
    built out of the collector's reach once serving starts (``gc.freeze``).

    Prefer ``stop`` to cancelling: it ends only the transport, so the body of ``start_server`` returns
    and the tree stops in order (children in reverse order, each with its grace period, backends
    closed), where a cancellation reaches every task of the tree at once.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}: use one of {', '.join(TRANSPORTS)}")
    listeners = None
    if transport == "http":
        listeners = await open_listeners(host, port)  # a busy port fails here, before the tree starts
    async with (
        start_server(
            server, session_state_store=session_state_store, task_backend=task_backend, **options
        ) as running,
        trio.open_nursery() as nursery,
    ):
        if stop is not None:

            async def stop_transport() -> None:
                await stop.wait()
                await running.end_listens()  # while the transport can still carry their final results
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_transport)
        if transport == "stdio":
            if freeze_after_start:
                _freeze_startup()
            task_status.started(None)
            await serve_stdio(running)
            nursery.cancel_scope.cancel()  # end of input: done
            return
        bound: int = await nursery.start(
            functools.partial(
                serve_http,
                running,
                host=host,
                port=port,
                http_server=http_server,
                listeners=listeners,
                **(http_options or {}),
            )
        )
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/mcp"
        if running.cluster is not None:
            print(f"mcpvisor: node {running.node_id} (events cross nodes through Redis)", file=sys.stderr)
        print(
            f"mcpvisor: serving {getattr(server, 'name', 'MCP server')} at {url}",
            file=sys.stderr,
            flush=True,
        )
        if freeze_after_start:
            _freeze_startup()
        task_status.started(url)


def _freeze_startup() -> None:
    """Move everything alive after start-up (modules, the server's definitions, the supervision tree)
    out of the collector's reach: a full collection then walks only what came later, which shortens
    the pauses that set the p99 (benchmarks/README.md, "gc"). Garbage is collected first, so none of it
    is kept; what start-up built lives as long as the server anyway."""
    gc.collect()
    gc.freeze()


async def _until_terminated(main: Callable[[trio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGTERM (a container or service manager stopping us) sets ``stop``: an
    orderly stop, as Ctrl-C is, instead of dying mid-write."""
    stop = trio.Event()
    lone: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:

            async def on_sigterm() -> None:
                with trio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        logging.getLogger("mcpvisor.runtime.transports").info("SIGTERM: stopping")
                        stop.set()
                        return

            nursery.start_soon(on_sigterm)
            await main(stop)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # the server's own error (a bad backend URL...), raised bare, through the nurseries it
        # crossed (a ListenError...)
        lone = lone_error(group, nested=True)
        if lone is None:
            raise
    if lone is not None:
        raise lone


def run_server(
    server: ServedServer,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    session_state_store: str | SessionStateStore = "memory://",
    task_backend: str | TaskBackend = "memory://",
    **options: Any,
) -> None:
    """Serve until stdin ends (stdio), Ctrl-C or SIGTERM; blocking."""
    configure_logging()
    try:
        trio.run(
            _until_terminated,
            lambda stop: serve(
                server,
                stop=stop,
                transport=transport,
                host=host,
                port=port,
                session_state_store=session_state_store,
                task_backend=task_backend,
                freeze_after_start=True,
                **options,
            ),
        )
    except* KeyboardInterrupt:  # bare, or inside the groups of the nurseries it crossed
        logging.getLogger("mcpvisor.runtime.transports").info("interrupted: stopped")
