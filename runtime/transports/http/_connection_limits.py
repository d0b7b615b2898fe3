"""How many connections the HTTP/1.1 server holds, which of them are waiting on their client, and
what it does when there are too many or no file descriptors are left.

Why: a connection that sends a request head and then nothing used to hold its socket forever, so
1,100 of them took every descriptor of a 1,024-fd process and locked every client out, while trio's
accept loop logged a traceback every 100 ms. Here:

- every wait on the client is bounded (the head by ``keep_alive``, the body by ``body_timeout``) and
  registered with its start time;
- at ``max_connections`` a new connection first makes room by closing the connection that has been
  waiting on its client the longest (an idle keep-alive, a head or body that does not come); only when
  every connection is busy in the app is it refused: ``503`` with ``Retry-After`` and
  ``Connection: close``, written at once without reading its request;
- ``accept()`` failing for want of descriptors (EMFILE...) closes the longest waiters too and backs off
  briefly instead of spinning or dying;
- none of this logs per connection: it is counted and summed up in one warning per interval.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

import trio

logger = logging.getLogger("mcpvisor.runtime.transports")

#: ``accept()`` errors that mean "no descriptor or buffer left now", not "the listener is broken"
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: how long accepting pauses after running out, when closing waiters freed something / nothing
_BACKOFF_FREED: Final = 0.01
_BACKOFF_STUCK: Final = 0.25
#: waiters closed at once when accept() runs out of descriptors
_EVICT_ON_EMFILE: Final = 8
#: refusals (503) written at the same time; past that, connections over the cap are closed unanswered
_MAX_REFUSING: Final = 64
#: how long a refusal takes what the client still sends before closing (so it is not a reset)
_REFUSE_LINGER: Final = 0.25
#: descriptors the default cap leaves to the rest of the process (files, backends, pipes)
_FD_RESERVE: Final = 128
_DEFAULT_CAP: Final = 10_000

_REFUSAL_BODY = b"Server at its connection limit: retry soon.\n"
_REFUSAL = (
    b"HTTP/1.1 503 \r\ncontent-type: text/plain\r\ncontent-length: %d\r\nretry-after: 1\r\n"
    b"connection: close\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def default_max_connections(fd_limit: int | None = None) -> int:
    """The connection cap when none is given: the soft descriptor limit (``ulimit -n``) less a
    reserve for the rest of the process, at most 10,000; 1,024 descriptors give 896."""
    if fd_limit is None:
        try:
            import resource

            fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):  # no such limit here (Windows)
            return _DEFAULT_CAP
        if fd_limit == resource.RLIM_INFINITY:
            return _DEFAULT_CAP
    elif fd_limit < 0:  # RLIM_INFINITY
        return _DEFAULT_CAP
    return max(16, min(_DEFAULT_CAP, fd_limit - _FD_RESERVE))


class Tally:
    """Counts of what happened to connections, logged as one warning per ``interval`` at most."""

    _TEXT: Final = {
        "refused": "{} connection(s) refused with 503 (every one of max_connections={} busy)",
        "dropped": "{} connection(s) over the cap closed unanswered (too many refusals at once)",
        "evicted": "{} connection(s) waiting on their client closed to make room (max_connections={})",
        "body_timeout": "{} request body(ies) not received within body_timeout (408)",
        "accept_failed": (
            "accept() ran out of file descriptors {} times (raise `ulimit -n` or lower max_connections={})"
        ),
    }

    def __init__(self, cap: int, interval: float = 10.0) -> None:
        self.cap = cap
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._next_log = -math.inf

    def note(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.totals[kind] = self.totals.get(kind, 0) + 1
        if trio.current_time() >= self._next_log:
            self.flush()

    def flush(self) -> None:
        """Log what was counted since the last warning, if anything."""
        if not self.counts:
            return
        parts = [self._TEXT[kind].format(count, self.cap) for kind, count in self.counts.items()]
        logger.warning("HTTP connection limits: %s", "; ".join(parts))
        self.counts.clear()
        self._next_log = trio.current_time() + self.interval

    async def flush_every_interval(self) -> None:
        while True:
            await trio.sleep(self.interval)
            self.flush()


class Connections:
    """The server's connections as limits and stopping see them.

    ``idle`` holds the scopes of waits for a request head (and of a closing connection's linger):
    stopping cancels them, since no request is under way. ``reading`` holds the scopes of waits for
    request-body bytes. Both map a scope to when its wait began; making room cancels the oldest.
    """

    def __init__(self, max_connections: int, body_timeout: float) -> None:
        self.max_connections = max_connections
        self.body_timeout = body_timeout
        self.count = 0
        self.refusing = 0
        self.stopping = False
        self.idle: dict[trio.CancelScope, float] = {}
        self.reading: dict[trio.CancelScope, float] = {}
        self.tally = Tally(max_connections)

    def begin_stop(self) -> None:
        self.stopping = True
        for scope in list(self.idle):
            scope.cancel()

    @contextlib.contextmanager
    def idling(self, seconds: float) -> Iterator[trio.CancelScope]:
        """A wait of at most ``seconds`` that serves no request, hence ends as soon as we stop."""
        with trio.move_on_after(seconds) as scope:
            if self.stopping:
                scope.cancel()
            self.idle[scope] = trio.current_time()
            try:
                yield scope
            finally:
                self.idle.pop(scope, None)

    def evict_oldest(self) -> bool:
        """Close the connection waiting on its client the longest; False when none is waiting."""
        oldest: tuple[float, trio.CancelScope, dict[trio.CancelScope, float]] | None = None
        for waits in (self.idle, self.reading):
            for scope, since in waits.items():  # insertion order is start order: the first is oldest
                if oldest is None or since < oldest[0]:
                    oldest = (since, scope, waits)
                break
        if oldest is None:
            return False
        _, scope, waits = oldest
        del waits[scope]
        scope.cancel()
        self.tally.note("evicted")
        return True


async def accept_connections(
    listener: trio.SocketListener,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    connections: Connections,
    nursery: trio.Nursery,
) -> None:
    """Accept on ``listener`` forever, serving each connection with ``handler`` in ``nursery``,
    within the cap (see the module docstring)."""
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise
            connections.tally.note("accept_failed")
            freed = sum(connections.evict_oldest() for _ in range(_EVICT_ON_EMFILE))
            await trio.sleep(_BACKOFF_FREED if freed else _BACKOFF_STUCK)
            continue
        if connections.count >= connections.max_connections and not connections.evict_oldest():
            _refuse(stream, connections, nursery)
            continue
        connections.count += 1
        nursery.start_soon(_counted, handler, stream, connections)


async def _counted(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    stream: trio.SocketStream,
    connections: Connections,
) -> None:
    try:
        await handler(stream)
    finally:
        connections.count -= 1


def _refuse(stream: trio.SocketStream, connections: Connections, nursery: trio.Nursery) -> None:
    if connections.refusing >= _MAX_REFUSING:
        connections.tally.note("dropped")
        stream.socket.close()
        return
    connections.tally.note("refused")
    connections.refusing += 1
    nursery.start_soon(_answer_refusal, stream, connections)


async def _answer_refusal(stream: trio.SocketStream, connections: Connections) -> None:
    """503 at once, then a short linger for what the client still sends (else it may get a reset
    before it reads the answer), then close."""
    try:
        with trio.move_on_after(_REFUSE_LINGER):
            await stream.send_all(_REFUSAL)
            await stream.send_eof()
            for _ in range(16):
                if not await stream.receive_some(65536):
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        connections.refusing -= 1
        with trio.CancelScope(shield=True):
            await stream.aclose()
