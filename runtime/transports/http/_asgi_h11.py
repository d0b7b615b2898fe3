"""A lean HTTP/1.1 server for one ASGI app, on trio sockets, parsing with httptools or h11.

Why not only hypercorn: its trio worker serves a trivial app at under half uvicorn's rate on this
project's machines (benchmarks/README.md, "HTTP floor"), while h11 driven straight on trio sockets runs
at uvicorn's rate or better. The gap is per-request machinery (a task and several channel hops per
request, a write per ASGI message). Here the app runs in the connection's own task, a whole response
that is ready at once leaves in one ``send_all``, and a streamed one is written chunk by chunk as it
comes (SSE must not wait).

Scope: HTTP/1.1 (and 1.0) with keep-alive, no HTTP/2, no TLS, no websockets, no ``lifespan`` (the MCP
app needs none; uvicorn's ``lifespan="off"``). Put a proxy in front for TLS. Limits: the request head
(``max_header_bytes``, exactly; 431 beyond), an idle keep-alive connection or a head on its way
(``keep_alive`` seconds), the request body's arrival (``body_timeout``; 408), the connections held
(``max_connections``; ``_connection_limits`` makes room or answers 503), and the size of the
body through the app (ours answers 413 past its ``max_body_bytes``, chunked bodies included, with a
JSON-RPC error body a server-side limit could not give).

Stopping (a cancellation) is graceful for ``grace`` seconds: no new connections, idle ones closed,
requests in flight may finish. That matters for an orderly stop (SIGTERM): the tree behind the app is
still running then, so a tools/call under way gets its answer instead of a reset.

Parsers: httptools (llhttp, in C; the default) through ``_httptools_connection``, a look-alike of the
part of ``h11.Connection`` used here, or h11 itself (``parser="h11"``). The loop below is the same
for both, so every limit and answer is too; ``_httptools_reader`` says where llhttp is stricter.

Length: one connection's whole life (head, body, response, keep-alive, graceful stop) reads best in one
place; the connection limits are in _connection_limits.py and the bind errors in _listen_error.py.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import unquote

import h11
import trio

from ._connection_limits import Connections, accept_connections, default_max_connections
from ._listen_error import open_listeners

try:
    from ._httptools_connection import HttptoolsConnection
    from ._httptools_reader import RequestHead
except ImportError:  # httptools is missing: h11 parses (HTTP_PARSERS says which are there)
    HttptoolsConnection = None  # type: ignore[assignment,misc]
    RequestHead = None  # type: ignore[assignment,misc]

#: The request parsers our server can run on: httptools (llhttp, in C; the default when it is
#: installed) and h11 (pure Python). Both give the same events to the same connection loop.
HTTP_PARSERS: tuple[str, ...] = ("httptools", "h11") if HttptoolsConnection is not None else ("h11",)
#: The parser used when none is named.
DEFAULT_PARSER: str = HTTP_PARSERS[0]
_HEADS: tuple[type[Any], ...] = (h11.Request,) if RequestHead is None else (h11.Request, RequestHead)

logger = logging.getLogger("mcpvisor.runtime.transports")

ASGIMessage: TypeAlias = MutableMapping[str, Any]
#: a connection's parser: h11's, or its look-alike on httptools (``_httptools_connection``)
Conn: TypeAlias = Any
ASGIApp: TypeAlias = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[ASGIMessage]],
        Callable[[ASGIMessage], Awaitable[None]],
    ],
    Awaitable[None],
]

_READ_SIZE = 64 * 1024
#: how long a connection closed after an error answer keeps reading what the peer still sends
_LINGER = 1.0
#: the most of an unread request body skipped to keep a connection alive
_SKIP_LIMIT = 1024 * 1024


class _ClientGone(Exception):
    """The peer closed the connection (or broke it) while we read."""


class _BodyTimeout(Exception):
    """The request body did not come within ``body_timeout`` (or its wait was closed to make room)."""


async def _next_event(conn: Conn, stream: trio.SocketStream) -> Any:
    """h11's next event, reading from the socket as long as it needs data."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise _ClientGone from exc
        if not data:
            raise _ClientGone
        conn.receive_data(data)


async def _next_head(conn: Conn, stream: trio.SocketStream, limit: int) -> Any:
    """The next request head (or the end of the connection), refused past ``limit`` bytes exactly.

    h11's own bound (``max_incomplete_event_size``) only applies while a head is incomplete, so a
    head that arrives whole in one read of 64 KiB sails past a 64 KiB limit, and one that straddles
    two reads may reach about twice the limit. Reading at most up to ``limit + 1`` buffered bytes
    makes h11 refuse any head longer than that; the one byte more is checked here.
    """
    fed = len(conn.trailing_data[0])  # a pipelined request read with the previous one
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            if fed > limit and isinstance(event, _HEADS) and fed - len(conn.trailing_data[0]) > limit:
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
            return event
        try:
            # h11 raised above if more than ``limit`` bytes were buffered and no head was complete
            data = await stream.receive_some(max(1, min(_READ_SIZE, limit + 1 - fed)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise _ClientGone from exc
        if not data:
            raise _ClientGone
        fed += len(data)
        conn.receive_data(data)


#: The status of a refused request, by the status h11 suggests for what it refused.
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
}


def _ambiguous_length(request: Any) -> bool:
    """Content-Length together with Transfer-Encoding: a request-smuggling shape (RFC 9112 section
    6.3). h11 reads the body by Transfer-Encoding; the connection must close after the answer."""
    length = chunked = False
    for name, _ in request.headers:
        if name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            chunked = True
    return length and chunked


class _RequestCycle:
    """One request/response cycle on a connection: the ASGI ``receive`` and ``send`` callables."""

    def __init__(
        self,
        conn: Conn,
        stream: trio.SocketStream,
        request: Any,
        buffer_limit: int,
        connections: Connections,
    ) -> None:
        self.conn = conn
        self.buffer_limit = buffer_limit
        self.connections = connections
        self.stream = stream
        self.request = request
        self.body_done = False
        self.pending: Any = None  # a body event read ahead of the app
        self.disconnected = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.response_started = False
        self.response_done = False
        #: the status owed for a request body we could not read (malformed framing), if any
        self.refused: int | None = None
        #: the answer must end the connection (a smuggling shape, or the server is stopping)
        self.close_after = False
        self.body_deadline: float | None = None

    async def receive(self) -> ASGIMessage:
        if self.disconnected or self.response_done:
            return {"type": "http.disconnect"}
        if not self.body_done:
            event, self.pending = self.pending, None
            try:
                if event is None:
                    event = self.conn.next_event()
                    if event is h11.NEED_DATA:
                        event = await self._await_body()
                if isinstance(event, h11.Data):
                    # Read ahead: a body that is all here ends in this message (one app round less).
                    ahead = self.conn.next_event()
                    if ahead is h11.NEED_DATA:
                        return {"type": "http.request", "body": bytes(event.data), "more_body": True}
                    if not isinstance(ahead, h11.EndOfMessage):
                        self.pending = ahead
                        return {"type": "http.request", "body": bytes(event.data), "more_body": True}
                    self.body_done = True
                    return {"type": "http.request", "body": bytes(event.data), "more_body": False}
            except _ClientGone:
                # The body ended early: an incomplete message (400), for a client that only
                # half-closed and still reads; one that is gone just misses the answer.
                self.refused = 400
                self.disconnected = True
                return {"type": "http.disconnect"}
            except _BodyTimeout:
                self.refused = 408
                self.disconnected = True
                return {"type": "http.disconnect"}
            except h11.RemoteProtocolError as exc:
                # Bad framing (a chunk size that is not hex...): the client's fault, answered 4xx
                # by the server after the app (which sees a disconnect) returns.
                self.refused = exc.error_status_hint
                self.disconnected = True
                return {"type": "http.disconnect"}
            self.body_done = True  # EndOfMessage
            return {"type": "http.request", "body": b"", "more_body": False}
        # Body read: the next thing the peer can tell us is that it left. Bytes of a pipelined next
        # request are kept in h11's buffer for the next cycle, up to a bound: a peer that keeps sending
        # while its response is still open is treated as gone (and its connection is closed after).
        try:
            while len(self.conn.trailing_data[0]) <= self.buffer_limit:
                data = await self.stream.receive_some(_READ_SIZE)
                if not data:
                    break
                self.conn.receive_data(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        self.disconnected = True
        return {"type": "http.disconnect"}

    async def _await_body(self) -> Any:
        """The next body event, read within the body's deadline (``body_timeout`` from the first
        wait), in a wait that making room may cut short (a client that sends nothing goes first)."""
        connections = self.connections
        now = trio.current_time()
        if self.body_deadline is None:
            self.body_deadline = now + connections.body_timeout
        with trio.CancelScope(deadline=self.body_deadline) as scope:
            connections.reading[scope] = now
            try:
                return await _next_event(self.conn, self.stream)
            finally:
                connections.reading.pop(scope, None)
        if trio.current_time() >= self.body_deadline:
            connections.tally.note("body_timeout")
        raise _BodyTimeout

    async def send(self, message: ASGIMessage) -> None:
        if self.refused is not None:  # the server answers a malformed request itself
            raise trio.BrokenResourceError("the request was malformed")
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("ASGI: http.response.start sent twice")
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            if self.close_after or self.connections.stopping:  # this is the connection's last response
                self.headers = [(k, v) for k, v in self.headers if k.lower() != b"connection"]
                self.headers.append((b"connection", b"close"))
            return
        if kind != "http.response.body":
            raise RuntimeError(f"ASGI: unexpected message {kind!r}")
        if self.status is None:
            raise RuntimeError("ASGI: http.response.body before http.response.start")
        if self.response_done:
            raise RuntimeError("ASGI: body sent after the response ended")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        out: list[bytes] = []
        if not self.response_started:
            # The head waits for the first body message: when that is the whole body, the head can
            # say how long it is (rather than chunking one chunk), and h11 checks the head once.
            if not more and not _has_header(self.headers, b"content-length"):
                self.headers.append((b"content-length", str(len(body)).encode()))
            conn = self.conn
            if type(conn) is h11.Connection:
                out.append(conn.send(h11.Response(status_code=self.status, headers=self.headers)) or b"")
            else:  # httptools: no event objects (the connection checks the headers as h11 would)
                out.append(conn.write_head(self.status, self.headers))
            self.response_started = True
        conn = self.conn
        plain = type(conn) is h11.Connection
        if body and self.request.method != b"HEAD" and self.status not in (204, 304):
            out.append((conn.send(h11.Data(data=body)) or b"") if plain else conn.write_data(body))
        if not more:
            out.append((conn.send(h11.EndOfMessage()) or b"") if plain else conn.write_end())
            self.response_done = True
        data = b"".join(out)
        if data:
            if self.disconnected:
                raise trio.BrokenResourceError("the client disconnected")
            await self.stream.send_all(data)


def _has_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _scope(request: Any, client: Any, server: Any) -> dict[str, Any]:
    target = bytes(request.target)
    raw_path, _, query = target.partition(b"?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode("ascii"),
        "method": request.method.decode("ascii"),
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": request.headers
        if type(request) is RequestHead
        else [(key.lower(), value) for key, value in request.headers.raw_items()],
        "client": client,
        "server": server,
    }


def _address(sock: Any, peer: bool) -> tuple[str, int] | None:
    try:
        found = sock.getpeername() if peer else sock.getsockname()
    except OSError:
        return None
    return (str(found[0]), int(found[1]))


async def _refuse(stream: trio.SocketStream, conn: Conn, status: int, connections: Connections) -> None:
    """A bare error answer (400, 431, 500...) on a connection about to close; best effort."""
    body = f"{_REASONS.get(status, 'Internal Server Error')}\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    headers.append((b"connection", b"close"))
    try:
        data = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)
        # Close gently: a peer still sending (a head too large) would otherwise get a reset, which may
        # destroy the answer before it is read. Stop writing, take what still comes for a moment
        # (not from a peer that has been sending nothing: 408).
        await stream.send_eof()
        with connections.idling(_LINGER if status != 408 else 0):
            for _ in range(16):
                if not await stream.receive_some(_READ_SIZE):
                    break
    except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def _skip_body(conn: Conn, stream: trio.SocketStream) -> bool:
    """Read past the rest of a request body the app did not want (often just its end, as for a
    DELETE), so the connection can serve the next request; False when that is not worth it."""
    left = _SKIP_LIMIT
    try:
        with trio.move_on_after(_LINGER):
            while conn.their_state is h11.SEND_BODY:
                event = await _next_event(conn, stream)
                if isinstance(event, h11.Data):
                    left -= len(event.data)
                    if left < 0:
                        return False
    except (_ClientGone, h11.RemoteProtocolError):
        return False
    return conn.their_state is h11.DONE


async def serve_connection(
    app: ASGIApp,
    stream: trio.SocketStream,
    *,
    max_header_bytes: int,
    keep_alive: float,
    connections: Connections | None = None,
    parser: str | None = None,
) -> None:
    """Serve requests on one connection, one after another, until either side closes it."""
    connections = connections or Connections(default_max_connections(), 30.0)
    conn: Conn
    if (parser or DEFAULT_PARSER) == "httptools":
        conn = HttptoolsConnection(max_header_bytes)
    else:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
    client = _address(stream.socket, peer=True)
    server = _address(stream.socket, peer=False)
    # One scope per connection bounds each wait for a request head (its deadline moves; a scope per
    # request costs more); the server cancels it when it stops while the connection waits.
    idle = trio.CancelScope()
    try:
        with idle:
            await _serve_requests(
                app, stream, conn, client, server, idle, max_header_bytes, keep_alive, connections
            )
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await stream.aclose()


async def _serve_requests(
    app: ASGIApp,
    stream: trio.SocketStream,
    conn: Conn,
    client: Any,
    server: Any,
    idle: trio.CancelScope,
    max_header_bytes: int,
    keep_alive: float,
    connections: Connections,
) -> None:
    while not connections.stopping:
        now = trio.current_time()
        idle.deadline = now + keep_alive
        connections.idle[idle] = now
        bad: h11.RemoteProtocolError | None = None
        event: Any = None
        try:
            event = await _next_head(conn, stream, max_header_bytes)
        except _ClientGone:
            return
        except h11.RemoteProtocolError as exc:
            bad = exc
        finally:
            connections.idle.pop(idle, None)
            idle.deadline = math.inf
        if bad is not None:
            await _refuse(stream, conn, bad.error_status_hint, connections)
            return
        if not isinstance(event, _HEADS):
            return  # ConnectionClosed (or a stray event): nothing more to serve
        exchange = _RequestCycle(conn, stream, event, max_header_bytes, connections)
        exchange.close_after = _ambiguous_length(event)
        try:
            await app(_scope(event, client, server), exchange.receive, exchange.send)
        except Exception as exc:
            if exchange.refused is None and not exchange.disconnected:
                logger.exception("the ASGI app failed on %s %r", event.method.decode(), event.target)
            else:  # the client left or sent garbage: a failure to answer it is no news (one per flood)
                logger.debug("the ASGI app stopped after its client left: %r", exc)
            if not exchange.response_started and not (exchange.disconnected and exchange.refused is None):
                await _refuse(stream, conn, exchange.refused or 500, connections)
            return
        if not exchange.response_done:
            if not exchange.response_started and not (exchange.disconnected and exchange.refused is None):
                await _refuse(stream, conn, exchange.refused or 500, connections)
            return  # a response cut short cannot be followed by another (nor one to a client gone)
        if exchange.disconnected:
            return  # the peer left (or flooded us, or framed its body wrong) while the response was open
        if conn.their_state is h11.SEND_BODY and not await _skip_body(conn, stream):
            return  # a body the app left unread, too big, too slow or malformed to skip
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return  # Connection: close
        conn.start_next_cycle()


async def serve_asgi(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_header_bytes: int = 64 * 1024,
    keep_alive: float = 5.0,
    body_timeout: float = 30.0,
    max_connections: int | None = None,
    grace: float = 1.0,
    listeners: Sequence[trio.SocketListener] | None = None,
    parser: str | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; ``task_status.started`` gets the bound port
    (``port=0`` picks a free one). Cancelled, it stops accepting, closes idle connections and gives
    requests in flight ``grace`` seconds before cutting them (0: cut at once). ``listeners`` already
    open (``open_listeners``) are served instead of binding ``host:port``; a bind that fails raises
    ``ListenError``.

    Limits: a request head must arrive within ``keep_alive`` seconds of the connection going idle
    (or opening) and be at most ``max_header_bytes`` long (431); a request body must arrive within
    ``body_timeout`` seconds (408); at most ``max_connections`` connections (default: from the file
    descriptor limit, ``default_max_connections``) are held, see ``_connection_limits``.

    ``parser`` names the request parser, one of ``HTTP_PARSERS`` (default ``DEFAULT_PARSER``:
    ``"httptools"`` when it is installed, else ``"h11"``); the limits and answers are the same on both.
    """
    parser = parser or DEFAULT_PARSER
    if parser not in HTTP_PARSERS:
        raise ValueError(f"unknown HTTP parser {parser!r}: use one of {', '.join(HTTP_PARSERS)}")
    if not keep_alive > 0:
        raise ValueError("keep_alive must be > 0 seconds")
    if not body_timeout > 0:
        raise ValueError("body_timeout must be > 0 seconds")
    if not grace >= 0:
        raise ValueError("grace must be >= 0 seconds")
    if max_connections is None:
        max_connections = default_max_connections()
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    if max_header_bytes < 64:
        raise ValueError("max_header_bytes must be at least 64")
    listeners = list(listeners) if listeners is not None else await open_listeners(host, port)
    bound = int(listeners[0].socket.getsockname()[1])
    connections = Connections(max_connections, body_timeout)
    handler = functools.partial(
        serve_connection,
        app,
        max_header_bytes=max_header_bytes,
        keep_alive=keep_alive,
        connections=connections,
        parser=parser,
    )
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_listeners, handler, listeners, connections, stop, grace)
            nursery.start_soon(connections.tally.flush_every_interval)
            task_status.started(bound)
            try:
                await trio.sleep_forever()
            finally:
                stop.set()
    finally:
        connections.tally.flush()


async def _serve_listeners(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    listeners: list[trio.SocketListener],
    connections: Connections,
    stop: trio.Event,
    grace: float,
) -> None:
    """Accept and serve connections; shielded from the caller's cancellation, which ``stop`` relays,
    so that the connections can finish within the grace instead of dying with it."""
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as serving:
            accepting = trio.CancelScope()

            async def accept() -> None:
                with accepting:
                    async with trio.open_nursery() as acceptors:
                        for listener in listeners:
                            acceptors.start_soon(accept_connections, listener, handler, connections, serving)

            serving.start_soon(accept)
            await stop.wait()
            accepting.cancel()
            for listener in listeners:
                await listener.aclose()
            connections.begin_stop()
            serving.cancel_scope.deadline = trio.current_time() + grace
