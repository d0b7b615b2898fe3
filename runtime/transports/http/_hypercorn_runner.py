"""Run hypercorn's trio worker on our listening sockets, and start it again when it dies.

hypercorn (0.18) lets some connection errors escape its serve loop, and the whole server ends with
them: pipelined requests on one connection can make two of its tasks write at once (trio's
``BusyResourceError``), and scanners have ended its trio worker the same way (hypercorn issue 203). A
client must not be able to stop the server, so, as a supervisor would, we serve again on the same
listening sockets: the connections of the dead instance are lost, the listening socket never closes,
and every other client carries on. Each instance gets duplicates of our sockets (``fd://``), so
hypercorn closing its own at exit leaves ours open for the next.

The pipelining one is guarded, so it no longer ends the server: hypercorn closes a connection
(``send_eof``, from its reading task, outside its send lock) while the app's response is being
written from another task, and trio refuses the second writer with ``BusyResourceError``, which
hypercorn's send path did not expect. ``_GuardedTCPServer`` treats it as the closed connection it
is (the response is dropped, as for a client that left); tests/test_hypercorn_send_guard.py replays
the example the framing fuzz test found.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any

import trio

logger = logging.getLogger("mcpvisor.runtime.transports")

#: The longest pause between two instances, after a run of crashes (the first waits 10 ms).
MAX_RESTART_PAUSE = 1.0


def _guard_hypercorn_sends() -> None:
    """Make hypercorn's trio worker build its connections with ``_GuardedTCPServer`` (idempotent)."""
    import hypercorn.trio.run as hypercorn_run
    from hypercorn.events import Closed, RawData
    from hypercorn.trio.tcp_server import TCPServer

    names = vars(hypercorn_run)  # the name its worker looks up when a connection comes
    if getattr(names.get("TCPServer"), "_mcpvisor_guarded", False):
        return

    class _GuardedTCPServer(TCPServer):
        _mcpvisor_guarded = True

        async def protocol_send(self, event: Any) -> None:
            try:
                await super().protocol_send(event)
            except trio.BusyResourceError:
                if not isinstance(event, RawData):
                    raise
                await self.protocol.handle(Closed())  # being closed: as for a client that left

    names["TCPServer"] = _GuardedTCPServer


def _bound_port(bind: str) -> int:
    """hypercorn reports `http://127.0.0.1:54321` / `http://[::1]:54321`: the port is after the last colon."""
    return int(bind.rsplit(":", 1)[1])


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _one_line(exc.exceptions[0])
    return " ".join(f"{type(exc).__name__}: {exc}".split())


async def run_hypercorn(
    app: Any,
    config: Any,
    listeners: Sequence[trio.SocketListener],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn on ``listeners`` until cancelled; ``task_status.started`` gets the
    port. A failure before the first instance started is raised; later ones are logged (one line, no
    traceback) and hypercorn is started again. The listeners are closed at the end."""
    from hypercorn.trio import serve

    _guard_hypercorn_sends()
    started = False
    crashes = 0
    try:
        while True:
            config.bind = [f"fd://{os.dup(listener.socket.fileno())}" for listener in listeners]
            try:
                async with trio.open_nursery() as nursery:
                    binds: list[str] = await nursery.start(functools.partial(serve, app, config))
                    if not started:
                        started = True
                        task_status.started(_bound_port(binds[0]))
            except Exception as exc:  # an ExceptionGroup of Exceptions too; never a cancellation
                if not started:
                    raise
                crashes += 1
                logger.error(  # noqa: TRY400 -- one line per crash, no traceback: a client may cause many
                    "hypercorn stopped on an error (%s): serving again on the same socket (restart %d)",
                    _one_line(exc),
                    crashes,
                )
                await trio.sleep(min(MAX_RESTART_PAUSE, 0.01 * 2 ** min(crashes, 10)))
                continue
            return  # hypercorn ended by itself: nothing asked it to, but nothing failed either
    finally:
        for listener in listeners:
            listener.socket.close()
