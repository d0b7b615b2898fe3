"""The Streamable HTTP transport: an ASGI app driving a `ServerPort`, and `serve_http` to run it.

One endpoint (default `/mcp`) takes POST (one JSON-RPC message; a batch only for 2025-03-26 clients),
GET (the session's standalone SSE stream, or the resumption of a POST stream via `Last-Event-ID`) and
DELETE (end the session). Both protocol eras share it:

- handshake era (2025-11-25 and earlier): `initialize` without `Mcp-Session-Id` creates a session and the
  response carries its id; every later message names it (400 without, 404 for an unknown one);
- stateless era (2026-07-28): a request whose `params._meta` carries the protocol-version key needs no
  session; its `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers must agree with the body
  (400 with -32020), and GET / DELETE from such clients answer 405.

The transport never interprets MCP beyond that routing: everything else happens behind the port, and
every failure is an HTTP status with a JSON-RPC error body, never a dropped connection. See docs/http.md.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import trio

from ...auth import AuthSettings, Principal, check_scopes
from ...protocol import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
    ErrorResponse,
    Malformed,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    cancelled_notification,
    check_param_headers,
    check_stateless_headers,
    encode,
    error_response,
    extract_request_context,
    is_stateless_request,
    is_supported,
    parse_payload,
)
from ...server._caller import Requester, owner_key
from ...tree._listen import LISTEN_METHOD
from ...tree._port import (
    SERVER_BUSY,
    CloseSseStream,
    RequestLimitReached,
    ServerPort,
    SessionBusy,
    SessionLimitReached,
    TransportError,
    UnknownSession,
)
from ...tree._session_label import session_label
from ...tree._stats import ServerStats
from ._asgi_limits import with_request_limits
from ._auth import answer_refusal, authenticate_exchange, serve_metadata, without_credentials
from ._events import ReplayStream, SessionStreams, format_event, parse_event_id
from ._exchange import Disconnected, Exchange, Receive, Scope, Send, headers_of
from ._guard import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_ALLOWED_ORIGINS,
    JSON,
    LOOPBACK_HOSTS,
    SSE,
    AllowList,
    accepted_types,
    accepts,
)
from ._hypercorn_runner import run_hypercorn
from ._listen_error import ListenError, open_listeners, single_os_error
from ._streaming import pump_replies, pump_standalone, write_stream

__all__ = ["ListenError", "McpHttpApp", "mcp_asgi_app", "open_listeners", "serve_http"]

T = TypeVar("T")

logger = logging.getLogger("mcpvisor.runtime.transports")

SESSION_HEADER: Final = "mcp-session-id"
VERSION_HEADER: Final = "mcp-protocol-version"
LAST_EVENT_ID_HEADER: Final = "last-event-id"
_SSE_HEADERS: Final = (("content-type", SSE), ("cache-control", "no-cache"), ("x-accel-buffering", "no"))
_EXPOSED_HEADERS: Final = "mcp-session-id, mcp-protocol-version, www-authenticate"
_ALLOWED_REQUEST_HEADERS: Final = (
    "content-type, accept, authorization, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, "
    "last-event-id"
)
#: How long a POST waits for its answer before anything is written. An answer in by then leaves with
#: the response head (and the SSE priming event) in one write, with no task watching for a disconnect;
#: a slower one gets the head and priming event at this point, and the answer in a later write.
READY_WAIT: Final = 0.05
BATCH_VERSION: Final = "2025-03-26"
"""The only revision with JSON-RPC batches, and the one assumed when `MCP-Protocol-Version` is absent."""


_STATELESS_ERROR_STATUS: Final[dict[int, int]] = {
    METHOD_NOT_FOUND: 404,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
}
"""2026-07-28 over HTTP: the status that goes with a JSON-RPC error answering the whole request."""


def _stateless_status(final: Response | ErrorResponse) -> int:
    if isinstance(final, Response):
        return 200
    return _STATELESS_ERROR_STATUS.get(final.error.code, 200)


class McpHttpApp:
    """The ASGI application; build it with `mcp_asgi_app`. One instance serves one `ServerPort`."""

    def __init__(
        self,
        port: ServerPort,
        *,
        path: str | None = "/mcp",
        allowed_origins: Sequence[str] | None = None,
        allowed_hosts: Sequence[str] | None = None,
        json_response: bool = False,
        retry_ms: int = 1000,
        sse_poll_after: float | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
        max_events_per_stream: int = 1024,
        max_streams_per_session: int = 64,
        reply_buffer: int = 64,
        keepalive: float | None = 15.0,
        abandon_after: float | None = 30.0,
        auth: AuthSettings | None = None,
    ) -> None:
        if abandon_after is not None and abandon_after < 0:
            raise ValueError("abandon_after must be >= 0 seconds (or None to never cancel abandoned streams)")
        self.abandon_after = abandon_after
        if sse_poll_after is not None and sse_poll_after < 0:
            raise ValueError("sse_poll_after must be >= 0 seconds (or None to keep streams open)")
        if keepalive is not None and not keepalive > 0:
            raise ValueError("keepalive must be > 0 seconds (or None for no keep-alive comments)")
        self.keepalive = keepalive
        self.port = port
        self.path = None if path is None else (path.rstrip("/") or "/")
        self.origins = AllowList.of(allowed_origins, DEFAULT_ALLOWED_ORIGINS)
        self.hosts = AllowList.of(allowed_hosts, DEFAULT_ALLOWED_HOSTS)
        self.json_response = json_response
        self.retry_ms = retry_ms
        self.sse_poll_after = sse_poll_after
        self.max_body_bytes = max_body_bytes
        self.max_events_per_stream = max_events_per_stream
        self.max_streams_per_session = max_streams_per_session
        self.reply_buffer = reply_buffer
        self._streams: dict[str, SessionStreams] = {}
        self._initializes = 0
        # Count into the running server's stats when the port has them (``RunningServer.stats``), so
        # one object tells what the server and this transport dropped or refused.
        stats = getattr(port, "stats", None)
        self.stats: ServerStats = stats if isinstance(stats, ServerStats) else ServerStats()
        # SEP-2243 needs the tools' schemas (their `x-mcp-header` annotations); a `RunningServer`
        # port carries its `Server`. Any other port (a test fake, a custom runtime) is not checked.
        server = getattr(port, "server", None)
        self._param_headers_of: Callable[[str], Mapping[str, str]] | None = getattr(
            server, "param_headers", None
        )
        # Authentication (docs/auth.md): given here, or configured on the running server / Server.
        found = auth if auth is not None else getattr(port, "auth", None)
        self.auth: AuthSettings | None = found if isinstance(found, AuthSettings) else None
        self._tool_scopes: Callable[[str], tuple[str, ...]] = getattr(server, "tool_scopes", lambda _: ())
        self._all_scopes: Callable[[], list[str]] = getattr(server, "all_tool_scopes", list)

    def _param_headers(self, tool: Any) -> Mapping[str, str]:
        if self._param_headers_of is None or not isinstance(tool, str):
            return {}
        return self._param_headers_of(tool)

    # -- ASGI entry ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        ex = Exchange(receive, send)
        try:
            await self._dispatch(scope, ex)
        except Disconnected:
            logger.debug("client disconnected before the response was written")
        except Exception:
            # A bug behind the port must not cost the client its answer: a 500 with a JSON-RPC body
            # when nothing was sent yet; the traceback stays in the log, never on the wire.
            logger.exception("Streamable HTTP request failed")
            if not ex.started:
                await ex.error(500, INTERNAL_ERROR, "Internal error")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _path_matches(self, scope: Scope) -> bool:
        if self.path is None:
            return True
        path = str(scope.get("path", "")).rstrip("/") or "/"
        root = str(scope.get("root_path", "")).rstrip("/")
        return path in (self.path, root + self.path)

    async def _dispatch(self, scope: Scope, ex: Exchange) -> None:
        headers = headers_of(scope)
        host = headers.get("host")
        if host is not None and not self.hosts.allows_host(host):
            await ex.error(403, INVALID_REQUEST, "Forbidden: Host header not allowed")
            return
        if self.auth is not None and await serve_metadata(scope, ex, self.auth, self._all_scopes):
            return
        origin = headers.get("origin")
        if origin is not None and not self.origins.allows_origin(origin):
            await ex.error(403, INVALID_REQUEST, "Forbidden: Origin not allowed")
            return
        if origin is not None:
            # An allowed browser page may read our answers and the session id (CORS); the allow-list
            # above is the whole trust decision, this only lets the browser act on it.
            ex.cors = [
                ("access-control-allow-origin", origin),
                ("access-control-expose-headers", _EXPOSED_HEADERS),
                ("vary", "origin"),
            ]
        if not self._path_matches(scope):
            await ex.error(404, INVALID_REQUEST, "Not Found: the MCP endpoint is elsewhere")
            return
        method = scope.get("method", "GET")
        ex.caller = Requester(without_credentials(headers))
        if self.auth is not None and method in ("POST", "GET", "DELETE"):
            principal = await authenticate_exchange(ex, self.auth, headers)
            if principal is None:
                return
            ex.caller = Requester(ex.caller.headers, principal)
        if method == "POST":
            await self._post(ex, headers)
        elif method == "GET":
            await self._get(ex, headers)
        elif method == "DELETE":
            await self._delete(ex, headers)
        elif method == "OPTIONS" and origin is not None:
            await ex.respond(
                204,
                headers=[
                    ("access-control-allow-methods", "GET, POST, DELETE"),
                    ("access-control-allow-headers", _ALLOWED_REQUEST_HEADERS),
                    ("access-control-max-age", "600"),
                ],
            )
        else:
            await ex.error(405, INVALID_REQUEST, "Method Not Allowed", [("allow", "GET, POST, DELETE")])

    # -- shared helpers -----------------------------------------------------------------------------

    def _session_streams(self, session_id: str) -> SessionStreams:
        streams = self._streams.get(session_id)
        if streams is None:
            streams = SessionStreams(
                self.max_streams_per_session, self.max_events_per_stream, on_drop=self.stats.count_dropped
            )
            self._streams[session_id] = streams
        return streams

    def _forget(self, session_id: str) -> None:
        self._streams.pop(session_id, None)

    def _sweep(self) -> None:
        """Drop the replay logs of sessions that ended without a DELETE (expired, crashed for good).

        Runs on every 64th `initialize`, so its cost (one `has_session` per logged session) is spread.
        """
        self._initializes += 1
        if self._initializes % 64:
            return
        for session_id in [sid for sid in self._streams if not self.port.has_session(sid)]:
            del self._streams[session_id]

    async def _unknown_session(self, ex: Exchange, session_id: str) -> None:
        self._forget(session_id)
        await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")

    def _not_owner(self, ex: Exchange, session_id: str) -> bool:
        """True when authentication is on and the session is another principal's (who then gets the
        404 of an unknown session: a 403 would confirm that the id exists)."""
        if self.auth is None:
            return False
        owner: Callable[[str], str | None] | None = getattr(self.port, "session_owner", None)
        return owner is None or owner(session_id) != owner_key(ex.caller.principal)

    async def _scopes_refused(self, ex: Exchange, item: Any) -> bool:
        """A ``tools/call`` whose principal lacks the tool's ``required_scopes``: 403, answered."""
        if self.auth is None or not isinstance(item, Request) or item.method != "tools/call":
            return False
        name = (item.params or {}).get("name")
        principal = ex.caller.principal
        if not isinstance(name, str) or not isinstance(principal, Principal):
            return False
        refusal = check_scopes(self.auth, principal, self._tool_scopes(name))
        if refusal is None:
            return False
        await answer_refusal(ex, refusal, item.id)
        return True

    async def _live_session(self, ex: Exchange, session_id: str | None) -> str | None:
        """``session_id`` when it names a live session, or one the port resumes from the state store
        (a restarted server, another node); else answers 400 (no Mcp-Session-Id) or 404 (unknown or
        expired) and returns None."""
        if session_id is None:
            await ex.error(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
            return None
        if not self.port.has_session(session_id) and not await self.port.resume_session(session_id):
            await self._unknown_session(ex, session_id)
            return None
        if self._not_owner(ex, session_id):
            await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")
            return None
        return session_id

    async def _follow(self, ex: Exchange, stream: ReplayStream, **how: Any) -> bool:
        """``write_stream`` with this app's retry hint and keep-alive."""
        return await write_stream(ex, stream, retry_ms=self.retry_ms, keepalive=self.keepalive, **how)

    async def _transport_error(self, ex: Exchange, exc: TransportError) -> None:
        if isinstance(exc, UnknownSession):
            await self._unknown_session(ex, exc.session_id)
        elif isinstance(exc, SessionLimitReached | RequestLimitReached):
            # A cap, not a crowded moment: 503 for the whole server's sessions (as the official SDK),
            # 429 for one client's requests; both say when to come back.
            status = 503 if isinstance(exc, SessionLimitReached) else 429
            retry_after = str(max(1, math.ceil(exc.retry_after)))
            phrase = "Service Unavailable" if status == 503 else "Too Many Requests"
            await ex.error(status, SERVER_BUSY, f"{phrase}: {exc}", [("retry-after", retry_after)])
        elif isinstance(exc, SessionBusy):
            retry_after = str(max(1, math.ceil(exc.retry_after)))
            await ex.error(
                429, INTERNAL_ERROR, "Too Many Requests: session is busy", [("retry-after", retry_after)]
            )
        else:
            await ex.error(503, INTERNAL_ERROR, f"Service Unavailable: {exc}")

    @staticmethod
    def _stateless_client(headers: dict[str, str]) -> bool:
        return is_stateless_request(
            None, session_id=headers.get(SESSION_HEADER), protocol_version=headers.get(VERSION_HEADER)
        )

    # -- POST ---------------------------------------------------------------------------------------

    async def _read_body(self, ex: Exchange) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await ex.receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_body_bytes:
                await ex.error(413, INVALID_REQUEST, "Payload Too Large")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _post(self, ex: Exchange, headers: dict[str, str]) -> None:
        types = accepted_types(headers.get("accept"))
        wants_sse = not self.json_response and accepts(types, SSE)
        ex.json_ok = accepts(types, JSON)
        if not (ex.json_ok or wants_sse):
            await ex.error(
                406,
                INVALID_REQUEST,
                "Not Acceptable: the client must accept application/json and text/event-stream",
            )
            return
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != JSON:
            await ex.error(415, INVALID_REQUEST, "Unsupported Media Type: send application/json")
            return
        body = await self._read_body(ex)
        if body is None:
            return
        session_id = headers.get(SESSION_HEADER)
        version = headers.get(VERSION_HEADER)
        allow_batch = session_id is not None and version in (None, BATCH_VERSION)
        incoming = parse_payload(body, allow_batch=allow_batch)
        if incoming.batch:
            await self._post_batch(ex, headers, session_id, incoming.items, wants_sse)
            return
        item = incoming.items[0]
        if isinstance(item, Malformed):
            await ex.respond(400, encode(item.reply))
            return
        if await self._scopes_refused(ex, item):
            return
        if isinstance(item, Request) and is_stateless_request(item):
            # Before the initialize check: `initialize` in the envelope is a 2026-07-28 client calling
            # a method its revision lacks (-32601, 404), not a handshake.
            await self._stateless_request(ex, headers, item, wants_sse)
        elif isinstance(item, Request) and item.method == "initialize" and session_id is None:
            await self._initialize(ex, item, wants_sse)
        elif self._stateless_client(headers):
            # A 2026-07-28 client's notification / response, or a request lacking its envelope.
            context = extract_request_context(item) if isinstance(item, Request) else None
            if isinstance(context, ErrorResponse):  # no envelope: -32602 naming the missing keys
                await ex.respond(400, encode(context))
            elif isinstance(item, Request):
                await self._request(ex, None, item, wants_sse, None)
            else:
                await self._accept(ex, None, item)
        else:
            if session_id is None:
                await ex.error(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
                return
            if version is not None and not is_supported(version):
                await ex.error(
                    400, INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version!r}"
                )
                return
            if not self.port.has_session(session_id) and not await self.port.resume_session(session_id):
                await self._unknown_session(ex, session_id)
                return
            if self._not_owner(ex, session_id):
                await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")
                return
            if isinstance(item, Request):
                await self._request(ex, session_id, item, wants_sse, self._session_streams(session_id))
            else:
                await self._accept(ex, session_id, item)

    async def _accept(
        self, ex: Exchange, session_id: str | None, message: Notification | Response | ErrorResponse
    ) -> None:
        try:
            await self.port.submit(session_id, message, caller=ex.caller)
        except TransportError as exc:
            await self._transport_error(ex, exc)
            return
        await ex.respond(202)

    async def _stateless_request(
        self, ex: Exchange, headers: dict[str, str], request: Request, wants_sse: bool
    ) -> None:
        mismatch = check_stateless_headers(request, headers)
        if mismatch is None and request.method == "tools/call" and request.params is not None:
            mismatch = check_param_headers(request, headers, self._param_headers(request.params.get("name")))
        if mismatch is not None:
            await ex.respond(400, encode(mismatch))
            return
        # The envelope is checked here too, so its refusals (`initialize` in the envelope is -32601, an
        # unserved version -32022) get their statuses whatever the port does with the request.
        context = extract_request_context(request)
        if isinstance(context, ErrorResponse):
            await ex.respond(_stateless_status(context), encode(context))
            return
        if request.method == LISTEN_METHOD:
            # Its answer *is* a stream of notifications: SSE even in JSON-response mode, or nothing.
            if not accepts(accepted_types(headers.get("accept")), SSE):
                await ex.error(
                    406,
                    INVALID_REQUEST,
                    "Not Acceptable: subscriptions/listen answers with a stream: accept text/event-stream",
                    request_id=request.id,
                )
                return
            wants_sse = True
        await self._request(ex, None, request, wants_sse, None)

    async def _initialize(self, ex: Exchange, request: Request, wants_sse: bool) -> None:
        self._sweep()
        try:
            if self.auth is None:
                session_id = await self.port.create_session()
            else:  # bound to its creator: anyone else is told it does not exist
                session_id = await self.port.create_session(owner=owner_key(ex.caller.principal))
        except TransportError as exc:
            await self._transport_error(ex, exc)
            return
        send_replies, replies = trio.open_memory_channel[Message](self.reply_buffer)
        try:
            await self.port.submit(session_id, request, send_replies, caller=ex.caller)
        except TransportError as exc:
            send_replies.close()
            await self.port.close_session(session_id)
            await self._transport_error(ex, exc)
            return
        # The answer decides whether the session exists at all, so wait for it before any header goes
        # out: a refused initialize must not leave the client holding an id.
        final = await self._final_reply(replies, session_id, request.id)
        extra: list[tuple[str, str]] = []
        if isinstance(final, ErrorResponse):
            await self.port.close_session(session_id)
        else:
            extra.append((SESSION_HEADER, session_id))
        if not wants_sse:
            await ex.respond(200, encode(final), extra)
            return
        await ex.start(200, [("content-type", SSE), ("cache-control", "no-cache"), *extra])
        if extra:
            # Ids from the session's counter keep every event id unique in the session; the stream is
            # delivered in this one write, so nothing is kept for resumption.
            streams = self._session_streams(session_id)
            stream = streams.open()
            streams.discard(stream.key)
            seq = stream.append(encode(final))
            priming = format_event(b"", stream.event_id(0), self.retry_ms)
            await ex.body(priming + format_event(encode(final), stream.event_id(seq)))
        else:
            await ex.body(format_event(encode(final)))

    async def _final_reply(
        self,
        replies: trio.MemoryReceiveChannel[Message],
        session_id: str | None,
        request_id: RequestId,
        first: Message | None = None,
    ) -> Response | ErrorResponse:
        """Wait for the final answer of a request whose client wants plain JSON.

        Related notifications have nowhere to go and are dropped; a server-to-client request is
        answered on the client's behalf with an error, so the handler waiting for it fails fast
        instead of hanging.
        ``first`` is a reply already taken from ``replies`` (``_ready_reply``).
        """
        async with replies:
            if first is not None and await self._json_reply_item(first, session_id, request_id):
                return first  # type: ignore[return-value]  # (checked by _json_reply_item)
            async for message in replies:
                if await self._json_reply_item(message, session_id, request_id):
                    return message  # type: ignore[return-value]
        return error_response(request_id, INTERNAL_ERROR, "Internal error")

    async def _json_reply_item(self, message: Message, session_id: str | None, request_id: RequestId) -> bool:
        """True for the final answer; a server-to-client request is refused, anything else dropped."""
        if isinstance(message, Response | ErrorResponse) and message.id == request_id:
            return True
        if isinstance(message, Request) and session_id is not None:
            refusal = error_response(
                message.id,
                INTERNAL_ERROR,
                "the client asked for a JSON response, so it cannot receive server requests",
            )
            try:
                await self.port.submit(session_id, refusal)
            except TransportError:
                logger.debug("could not refuse %s for %s", message.method, session_label(session_id))
        return False

    async def _request(
        self,
        ex: Exchange,
        session_id: str | None,
        request: Request,
        wants_sse: bool,
        streams: SessionStreams | None,
    ) -> None:
        send_replies, replies = trio.open_memory_channel[Message](self.reply_buffer)
        try:
            await self.port.submit(session_id, request, send_replies, caller=ex.caller)
        except TransportError as exc:
            send_replies.close()
            await self._transport_error(ex, exc)
            return
        if session_id is None:
            await self._stateless_answer(ex, request, send_replies, replies, wants_sse)
            return
        first = await _ready_reply(replies)
        is_final = isinstance(first, Response | ErrorResponse) and first.id == request.id
        if not wants_sse:
            if is_final:
                replies.close()
                await ex.respond(200, encode(first))  # type: ignore[arg-type]
                return
            final = await _unless_disconnected(
                ex, functools.partial(self._final_reply, replies, session_id, request.id, first)
            )
            if final is None:  # a JSON answer cannot be resumed: the request is abandoned
                await self._abandon(session_id, [request.id])
                return
            await ex.respond(200, encode(final))
            return
        if streams is None:
            streams = self._session_streams(session_id)
        stream = streams.open(label=f"POST stream of request {request.id!r}")
        if is_final:
            replies.close()
            if await self._deliver_at_once(ex, stream, encode(first)):  # type: ignore[arg-type]
                streams.discard(stream.key)
            return
        if isinstance(first, CloseSseStream):  # what pump_replies does with the items after it
            stream.request_poll()
        elif first is not None:
            stream.append(encode(first), droppable=isinstance(first, Notification))
        answered: set[RequestId] = set()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(pump_replies, replies, stream, [request.id], answered=answered)
            )
            delivered = await self._follow(
                ex, stream, after=0, resumable=True, prime=True, poll_after=self.sse_poll_after
            )
            if not delivered:
                await self._abandon_unfollowed(session_id, stream, [request.id], answered)
        if delivered:
            streams.discard(stream.key)

    async def _deliver_at_once(self, ex: Exchange, stream: ReplayStream, answer: bytes) -> bool:
        """A POST's SSE response whose answer is already in: the head, the priming event and the answer
        in one write, exactly what ``write_stream`` would send for that log, without its tasks. True
        when written; else the answer stays in the log for a GET with ``Last-Event-ID``."""
        seq = stream.append(answer)
        stream.finish()
        await ex.start(200, _SSE_HEADERS)
        priming = format_event(b"", stream.event_id(0), self.retry_ms)
        data = priming + format_event(answer, stream.event_id(seq))
        stream.mark_taken(seq)
        try:
            await ex.body(data)
        except Disconnected:
            return False
        stream.mark_written(seq)
        return True

    async def _stateless_answer(
        self,
        ex: Exchange,
        request: Request,
        handle: trio.MemorySendChannel[Message],
        replies: trio.MemoryReceiveChannel[Message],
        wants_sse: bool,
    ) -> None:
        """A 2026-07-28 request: the HTTP status must say what the JSON-RPC error says.

        That revision maps its errors onto statuses (-32601 is 404; bad `_meta`, a missing capability,
        an unserved version are 400), so nothing is committed until the first reply is in. When that is
        already the final answer (the common case) it goes out as one JSON body with its status; only a
        request that streams first (progress, logs) gets an SSE stream, whose status is 200. There is
        no session to resume in, so its events carry no ids, and a client that closes the connection
        before the final answer has cancelled the request (the spec's cancellation for this revision):
        the port is told, through ``handle``, the channel the request was submitted with.
        """
        first: Message | None = await _ready_reply(replies)  # usually the answer: no watcher task then
        if first is None or isinstance(first, CloseSseStream):  # (not resumable: nothing to close)
            first = await _unless_disconnected(ex, functools.partial(_first_reply, replies, request.id))
        if first is None:
            self.stats.requests_abandoned += 1
            self.port.cancel_stateless(handle)
            replies.close()
            return
        if isinstance(first, Response | ErrorResponse) and first.id == request.id:
            replies.close()
            status = _stateless_status(first)
            if status != 200 or not wants_sse or ex.json_ok:
                await ex.respond(status, encode(first))
                return
            stream = ReplayStream(0)
            stream.append(encode(first))
            stream.finish()
            await self._follow(ex, stream, after=0, resumable=False, prime=False)
            return
        if not wants_sse:
            final = await _unless_disconnected(
                ex, functools.partial(self._final_reply, replies, None, request.id)
            )
            if final is None:
                self.stats.requests_abandoned += 1
                self.port.cancel_stateless(handle)
                replies.close()
                return
            await ex.respond(_stateless_status(final), encode(final))
            return
        stream = ReplayStream(
            0,
            max_events=self.max_events_per_stream,
            on_drop=self.stats.count_dropped,
            label=f"POST stream of stateless request {request.id!r}",
        )
        stream.append(encode(first), droppable=isinstance(first, Notification))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_replies, replies, stream, [request.id])
            delivered = await self._follow(ex, stream, after=0, resumable=False, prime=False)
            if not delivered and not stream.finished:
                self.stats.requests_abandoned += 1
                self.port.cancel_stateless(handle)  # the pump then ends with the request

    async def _post_batch(
        self,
        ex: Exchange,
        headers: dict[str, str],
        session_id: str | None,
        items: Sequence[Message | Malformed],
        wants_sse: bool,
    ) -> None:
        """A 2025-03-26 batch: every item goes to the session; the answers come back together."""
        # parse_payload refuses batches without a session: the 400 here is defensive.
        session_id = await self._live_session(ex, session_id)
        if session_id is None:
            return
        early: list[Message] = []
        channels: list[tuple[RequestId, trio.MemoryReceiveChannel[Message]]] = []
        for item in items:
            if isinstance(item, Malformed):
                early.append(item.reply)
                continue
            try:
                if isinstance(item, Request):
                    send_replies, replies = trio.open_memory_channel[Message](self.reply_buffer)
                    try:
                        await self._submit_patiently(session_id, item, send_replies, ex.caller)
                    except TransportError:
                        send_replies.close()
                        raise
                    channels.append((item.id, replies))
                else:
                    await self._submit_patiently(session_id, item, None)
            except UnknownSession as exc:
                await self._transport_error(ex, exc)
                return
            except TransportError as exc:
                if isinstance(item, Request):
                    code = SERVER_BUSY if isinstance(exc, RequestLimitReached) else INTERNAL_ERROR
                    early.append(error_response(item.id, code, str(exc)))
        if not channels and not early:
            await ex.respond(202)
            return
        if not wants_sse:
            answers: list[Message] = list(early)
            for request_id, replies in channels:
                answers.append(await self._final_reply(replies, session_id, request_id))
            await ex.respond(200, encode(answers))
            return
        streams = self._session_streams(session_id)
        stream = streams.open(label=f"POST stream of a batch of {len(items)}")
        answered: set[RequestId] = set()
        for message in early:
            stream.append(encode(message))
        async with trio.open_nursery() as nursery:

            async def pump_all() -> None:
                async with trio.open_nursery() as inner:
                    for request_id, replies in channels:
                        inner.start_soon(
                            functools.partial(
                                pump_replies, replies, stream, [request_id], finish=False, answered=answered
                            )
                        )
                stream.finish()

            nursery.start_soon(pump_all)
            delivered = await self._follow(
                ex, stream, after=0, resumable=True, prime=True, poll_after=self.sse_poll_after
            )
            if not delivered:
                ids = [request_id for request_id, _ in channels]
                await self._abandon_unfollowed(session_id, stream, ids, answered)
        if delivered:
            streams.discard(stream.key)

    async def _abandon(self, session_id: str, request_ids: Sequence[RequestId]) -> None:
        """Cancel requests whose client closed the response they were waiting on, so they free their
        place in the session's limits (``notifications/cancelled``, as the client could have sent)."""
        self.stats.requests_abandoned += len(request_ids)
        for request_id in request_ids:
            note = cancelled_notification(request_id, "the client closed the HTTP response")
            with contextlib.suppress(TransportError):
                await self._submit_patiently(session_id, note, None)

    async def _abandon_unfollowed(
        self,
        session_id: str,
        stream: ReplayStream,
        request_ids: Sequence[RequestId],
        answered: set[RequestId],
    ) -> None:
        """A POST's SSE connection ended before its answers: the client may resume (GET with
        Last-Event-ID), and a disconnect alone is no cancellation. When no connection follows the
        stream for ``abandon_after`` seconds, though, nobody will: cancel what is still running."""
        if self.abandon_after is None:
            return
        if await stream.wait_abandoned(self.abandon_after):
            await self._abandon(session_id, [rid for rid in request_ids if rid not in answered])

    async def _submit_patiently(
        self,
        session_id: str,
        item: Message,
        replies: trio.MemorySendChannel[Message] | None,
        caller: Requester | None = None,
    ) -> None:
        """``port.submit`` waiting out a full mailbox: for the items of a batch, and the cancellations
        of abandoned requests, which the server sends itself and has no client to retry them.

        A batch hands its items over all at once, faster than the session takes them in, so a full
        mailbox is waited for (up to the ``retry_after`` it names) instead of failing the rest of the
        batch. A request limit is not waited for: those items are answered with the error.
        """
        deadline: float | None = None
        while True:
            try:
                if caller is None:
                    await self.port.submit(session_id, item, replies)
                else:
                    await self.port.submit(session_id, item, replies, caller=caller)
            except RequestLimitReached:
                raise
            except SessionBusy as busy:
                now = trio.current_time()
                deadline = now + busy.retry_after if deadline is None else deadline
                if now >= deadline:
                    raise
                await trio.sleep(0.001)
            else:
                return

    # -- GET ----------------------------------------------------------------------------------------

    async def _get(self, ex: Exchange, headers: dict[str, str]) -> None:
        if self._stateless_client(headers):
            await ex.error(
                405, INVALID_REQUEST, "Method Not Allowed: no GET stream in 2026-07-28", [("allow", "POST")]
            )
            return
        if not accepts(accepted_types(headers.get("accept")), SSE):
            await ex.error(406, INVALID_REQUEST, "Not Acceptable: GET needs Accept: text/event-stream")
            return
        session_id = await self._live_session(ex, headers.get(SESSION_HEADER))
        if session_id is None:
            return
        streams = self._session_streams(session_id)
        resume = (
            parse_event_id(headers.get(LAST_EVENT_ID_HEADER, "")) if LAST_EVENT_ID_HEADER in headers else None
        )
        previous = streams.get(resume[0]) if resume is not None else None
        if previous is not None and resume is not None and not previous.standalone:
            # Resuming a POST's stream: the rest of that request's events, then its response.
            # Polls the handler asked for before this GET were honoured by earlier connections.
            if await self._follow(
                ex, previous, after=resume[1], resumable=True, prime=False, polls_seen=previous.polls
            ):
                streams.discard(previous.key)
            return
        try:
            channel = self.port.standalone_stream(session_id)
        except UnknownSession as exc:
            await self._transport_error(ex, exc)
            return
        stream = streams.open(standalone=True, label="GET stream")
        # When this resumes a standalone stream, the events its old connection missed go first on the
        # new one (with new ids: ids are per stream, and this is a new stream).
        backlog = list(previous.since(resume[1])) if previous is not None and resume is not None else []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_standalone, channel, stream, backlog)
            delivered = await self._follow(ex, stream, after=0, resumable=True, prime=True)
            nursery.cancel_scope.cancel()
        if delivered:
            streams.discard(stream.key)

    # -- DELETE -------------------------------------------------------------------------------------

    async def _delete(self, ex: Exchange, headers: dict[str, str]) -> None:
        if self._stateless_client(headers):
            await ex.error(
                405, INVALID_REQUEST, "Method Not Allowed: no sessions in 2026-07-28", [("allow", "POST")]
            )
            return
        session_id = await self._live_session(ex, headers.get(SESSION_HEADER))
        if session_id is None:
            return
        await self.port.close_session(session_id)
        self._forget(session_id)
        await ex.respond(200)


def mcp_asgi_app(
    port: ServerPort,
    *,
    path: str | None = "/mcp",
    allowed_origins: Sequence[str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    json_response: bool = False,
    retry_ms: int = 1000,
    sse_poll_after: float | None = None,
    max_body_bytes: int = 4 * 1024 * 1024,
    max_events_per_stream: int = 1024,
    max_streams_per_session: int = 64,
    keepalive: float | None = 15.0,
    abandon_after: float | None = 30.0,
    auth: AuthSettings | None = None,
) -> McpHttpApp:
    """The Streamable HTTP endpoint for `port` as an ASGI application.

    `allowed_origins` / `allowed_hosts` default to the loopback names on any port (DNS-rebinding
    protection for a local server); pass your public names when serving elsewhere, or `["*"]` to turn
    a check off. `json_response=True` answers every request with one JSON body instead of an SSE stream.
    `sse_poll_after` closes a POST's SSE connection after that many seconds without the final answer,
    so clients resume with GET + `Last-Event-ID` (SEP-1699 polling); `retry_ms` is the reconnect delay
    announced to them. `path=None` serves every path (when a router already chose this app).
    `keepalive` (seconds) writes an SSE comment on a stream that has been quiet that long, so proxies
    and client read timeouts do not end a long-lived one (a GET stream, a `subscriptions/listen`).
    A request whose client closed the response is cancelled, so it frees its place in the limits: at
    once for a JSON answer (it cannot be resumed), after `abandon_after` seconds without a connection
    following it for an SSE stream (the client may resume it meanwhile; None: never).
    `auth` turns on OAuth authorization (docs/auth.md): every request needs a bearer token the
    settings' verifier accepts, the protected-resource metadata is served at its well-known path, and
    sessions are bound to the principal that created them. Default: the running server's
    ``auth`` (``start_server(auth=...)`` or ``Server(auth=...)``), else none.
    """
    return McpHttpApp(
        port,
        path=path,
        allowed_origins=allowed_origins,
        allowed_hosts=allowed_hosts,
        json_response=json_response,
        retry_ms=retry_ms,
        sse_poll_after=sse_poll_after,
        max_body_bytes=max_body_bytes,
        max_events_per_stream=max_events_per_stream,
        max_streams_per_session=max_streams_per_session,
        keepalive=keepalive,
        abandon_after=abandon_after,
        auth=auth,
    )


def _is_loopback(host: str) -> bool:
    return host.strip("[]").lower() in {h.strip("[]") for h in LOOPBACK_HOSTS} or host.startswith("127.")


def _warn_if_exposed(app: McpHttpApp, host: str) -> None:
    """Say so, once at start, when a server reachable from other machines checks no Host (or Origin):
    DNS-rebinding protection then rests on the other check alone, or on nothing."""
    if _is_loopback(host):
        return
    off = [name for name, allow in (("Host", app.hosts), ("Origin", app.origins)) if allow.allows_all]
    if not off:
        return
    logger.warning(
        "serving on non-loopback address %s with the %s check off: a browser page can reach this server"
        " through DNS rebinding unless a proxy in front checks it; name your public host names with"
        " allowed_hosts=[...] (and origins with allowed_origins=[...])",
        host,
        " and ".join(off),
    )


#: The HTTP servers ``serve_http`` can run the app on.
HTTP_SERVERS: Final = ("h11", "hypercorn")


async def serve_http(
    running: ServerPort,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    path: str | None = "/mcp",
    http_server: str | None = None,
    listeners: Sequence[trio.SocketListener] | None = None,
    keep_alive: float = 5.0,
    max_header_bytes: int = 64 * 1024,
    body_timeout: float = 30.0,
    max_connections: int | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    port_number: int | None = None,
    server: str | None = None,
    **options: Any,
) -> None:
    """Serve `running` (a started server's `ServerPort`) over Streamable HTTP until cancelled.

    `port` and `http_server` mean what they mean to `serve()`: the TCP port (8000) and the HTTP server
    (`"h11"`). `port_number` and `server` are their former names, still accepted.

    Connection limits (docs/http.md, "Connection limits"): a connection idle, or sending a request head, for
    `keep_alive` seconds is closed; a head over `max_header_bytes` is 431; a request body not received
    within `body_timeout` seconds is 408; at most `max_connections` connections are held (default:
    from the file descriptor limit; ours only, hypercorn has no cap).

    A bind that fails raises `ListenError`, whose text is one line naming the address and the cause.
    `listeners` already open (`open_listeners(host, port_number)`, e.g. to fail before starting the
    server tree) are served instead of binding `host:port_number`; they become the server's.

    `server` picks the HTTP server: `"h11"` (the default), our lean HTTP/1.1 server on trio sockets
    (``_asgi_h11``), or `"hypercorn"`, hypercorn's trio worker (HTTP/2 and TLS options live there).
    `task_status.started(bound_port)` reports the real port, so `port_number=0` picks a free one.
    `options` go to `mcp_asgi_app`. Bound to a non-loopback address with no `allowed_hosts`, the Host
    check is off (the machine's public names are unknown to us); the Origin check stays on. Nothing is
    printed: the servers' messages go to the `mcpvisor.runtime.transports.http` logger.
    """
    port_number = _renamed("port", port, "port_number", port_number, 8000)
    server = _renamed("http_server", http_server, "server", server, "h11")
    if server not in HTTP_SERVERS:
        raise ValueError(f"unknown HTTP server {server!r}: use one of {', '.join(HTTP_SERVERS)}")
    if options.get("allowed_hosts") is None and not _is_loopback(host):
        options["allowed_hosts"] = ["*"]
    if server == "hypercorn" and max_connections is not None:
        raise ValueError("max_connections: hypercorn has no connection cap; use server='h11' for one")
    app = mcp_asgi_app(running, path=path, **options)
    _warn_if_exposed(app, host)
    started = False
    try:
        if server == "h11":
            from ._asgi_h11 import serve_asgi

            bare = host.strip("[]")
            async with trio.open_nursery() as nursery:
                bound: int = await nursery.start(
                    functools.partial(
                        serve_asgi,
                        app,
                        host=bare,
                        port=port_number,
                        listeners=listeners,
                        keep_alive=keep_alive,
                        max_header_bytes=max_header_bytes,
                        body_timeout=body_timeout,
                        max_connections=max_connections,
                    )
                )
                started = True
                task_status.started(bound)
            return
        from hypercorn.config import Config

        if listeners is None:  # bound here, so a restarted hypercorn serves the same socket
            listeners = await open_listeners(host, port_number)
        config = Config()
        config.accesslog = None
        config.errorlog = logger
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = keep_alive
        config.h11_max_incomplete_size = max_header_bytes
        # What hypercorn does not enforce itself (see _asgi_limits): the smuggling close, an exact
        # head limit, the body timeout.
        limited = with_request_limits(app, max_header_bytes=max_header_bytes, body_timeout=body_timeout)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(functools.partial(run_hypercorn, limited, config, listeners))
            started = True
            task_status.started(bound)
    except (OSError, BaseExceptionGroup) as exc:
        # Before it started, an OSError can only be the bind: say so in one line (ListenError).
        found = None if started else single_os_error(exc)
        if found is None:
            raise
        if isinstance(found, ListenError):
            raise found from found.__cause__
        raise ListenError.from_os_error(host.strip("[]"), port_number, found) from found


def _renamed(name: str, value: T | None, old: str, old_value: T | None, default: T) -> T:
    """A keyword given by its name or its former name (not both), else its default."""
    if value is not None and old_value is not None:
        raise TypeError(f"serve_http: {old!r} is the former name of {name!r}; pass only {name!r}")
    if value is not None:
        return value
    return old_value if old_value is not None else default


async def _ready_reply(replies: trio.MemoryReceiveChannel[Message]) -> Message | None:
    """The request's first reply if it comes within ``READY_WAIT``, else None (nothing taken)."""
    with trio.move_on_after(READY_WAIT):
        try:
            return await replies.receive()
        except trio.EndOfChannel:
            return None  # the followers below see the closed channel themselves
    return None


async def _first_reply(replies: trio.MemoryReceiveChannel[Message], request_id: RequestId) -> Message:
    """The first message a request sends, past control items a stateless stream cannot honour."""
    try:
        first: Message = await replies.receive()
        while isinstance(first, CloseSseStream):  # this stream cannot be resumed: ignore
            first = await replies.receive()
    except trio.EndOfChannel:
        return error_response(request_id, INTERNAL_ERROR, "Internal error")
    return first


async def _unless_disconnected(ex: Exchange, wait: Callable[[], Awaitable[T]]) -> T | None:
    """``await wait()``, or None when the client disconnects first (the wait is then cancelled)."""
    result: T | None = None
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await ex.wait_disconnect()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        result = await wait()
        nursery.cancel_scope.cancel()
    return result
