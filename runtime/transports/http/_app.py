"""`McpHttpApp`, the ASGI application: lifespan, the Host / Origin / path / auth checks, and the
routing of each request to the collaborator that serves it.

What a request is decides where it goes: GET and DELETE to `StreamRoutes`, a POST to `SessionPost`
(the handshake era) or `StatelessPath` (2026-07-28) once its body is read and parsed. The app and its
collaborators share one `AppState`; every failure is an HTTP status with a JSON-RPC error body.
"""

from __future__ import annotations

import logging
from typing import Any

from ...protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    ErrorResponse,
    Malformed,
    Message,
    Request,
    encode,
    extract_request_context,
    is_stateless_request,
    is_supported,
    parse_payload,
)
from ...server._caller import Requester
from ...tree._port import ServerPort
from ...tree._stats import ServerStats
from ._auth import authenticate_exchange, serve_metadata, without_credentials
from ._exchange import Disconnected, Exchange, Receive, Scope, Send, headers_of
from ._guard import JSON, SSE, AllowList, accepted_types, accepts
from ._headers import ALLOWED_REQUEST_HEADERS, BATCH_VERSION, EXPOSED_HEADERS, SESSION_HEADER, VERSION_HEADER
from ._options import HttpOptions
from ._session_post import SessionPost
from ._state import AppState, stateless_client
from ._stateless import StatelessPath
from ._streams import StreamRoutes

logger = logging.getLogger("mcpvisor.runtime.transports")


class McpHttpApp:
    """The ASGI application; build it with `mcp_asgi_app`. One instance serves one `ServerPort`.

    Takes its options as one `HttpOptions`, or as keyword arguments of the same names.
    """

    def __init__(self, port: ServerPort, options: HttpOptions | None = None, **overrides: Any) -> None:
        self.options = HttpOptions.build(options, overrides, where="McpHttpApp")
        self.state = AppState.of(port, self.options)
        self._session_post = SessionPost(self.state)
        self._stateless = StatelessPath(self.state)
        self._streams = StreamRoutes(self.state)

    @property
    def port(self) -> ServerPort:
        return self.state.port

    @property
    def stats(self) -> ServerStats:
        """What this transport dropped or refused (the running server's stats when the port has them)."""
        return self.state.stats

    @property
    def hosts(self) -> AllowList:
        return self.state.hosts

    @property
    def origins(self) -> AllowList:
        return self.state.origins

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
        if self.state.path is None:
            return True
        path = str(scope.get("path", "")).rstrip("/") or "/"
        root = str(scope.get("root_path", "")).rstrip("/")
        return path in (self.state.path, root + self.state.path)

    async def _dispatch(self, scope: Scope, ex: Exchange) -> None:
        state = self.state
        headers = headers_of(scope)
        host = headers.get("host")
        if host is not None and not state.hosts.allows_host(host):
            await ex.error(403, INVALID_REQUEST, "Forbidden: Host header not allowed")
            return
        if state.auth is not None and await serve_metadata(scope, ex, state.auth, state.all_scopes):
            return
        origin = headers.get("origin")
        if origin is not None and not state.origins.allows_origin(origin):
            await ex.error(403, INVALID_REQUEST, "Forbidden: Origin not allowed")
            return
        if origin is not None:
            # An allowed browser page may read our answers and the session id (CORS); the allow-list
            # above is the whole trust decision, this only lets the browser act on it.
            ex.cors = [
                ("access-control-allow-origin", origin),
                ("access-control-expose-headers", EXPOSED_HEADERS),
                ("vary", "origin"),
            ]
        if not self._path_matches(scope):
            await ex.error(404, INVALID_REQUEST, "Not Found: the MCP endpoint is elsewhere")
            return
        method = scope.get("method", "GET")
        ex.caller = Requester(without_credentials(headers))
        if state.auth is not None and method in ("POST", "GET", "DELETE"):
            principal = await authenticate_exchange(ex, state.auth, headers)
            if principal is None:
                return
            ex.caller = Requester(ex.caller.headers, principal)
        if method == "POST":
            await self._post(ex, headers)
        elif method == "GET":
            await self._streams.get(ex, headers)
        elif method == "DELETE":
            await self._streams.delete(ex, headers)
        elif method == "OPTIONS" and origin is not None:
            await ex.respond(
                204,
                headers=[
                    ("access-control-allow-methods", "GET, POST, DELETE"),
                    ("access-control-allow-headers", ALLOWED_REQUEST_HEADERS),
                    ("access-control-max-age", "600"),
                ],
            )
        else:
            await ex.error(405, INVALID_REQUEST, "Method Not Allowed", [("allow", "GET, POST, DELETE")])

    # -- POST: read, parse, route -------------------------------------------------------------------

    async def _read_body(self, ex: Exchange) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await ex.receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.options.max_body_bytes:
                await ex.error(413, INVALID_REQUEST, "Payload Too Large")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _post(self, ex: Exchange, headers: dict[str, str]) -> None:
        types = accepted_types(headers.get("accept"))
        wants_sse = not self.options.json_response and accepts(types, SSE)
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
            await self._session_post.batch(ex, session_id, incoming.items, wants_sse)
            return
        item = incoming.items[0]
        if isinstance(item, Malformed):
            await ex.respond(400, encode(item.reply))
            return
        if await self.state.scopes_refused(ex, item):
            return
        if isinstance(item, Request) and is_stateless_request(item):
            # Before the initialize check: `initialize` in the envelope is a 2026-07-28 client calling
            # a method its revision lacks (-32601, 404), not a handshake.
            await self._stateless.enveloped(ex, headers, item, wants_sse)
        elif isinstance(item, Request) and item.method == "initialize" and session_id is None:
            await self._session_post.initialize(ex, item, wants_sse)
        elif stateless_client(headers):
            # A 2026-07-28 client's notification / response, or a request lacking its envelope.
            context = extract_request_context(item) if isinstance(item, Request) else None
            if isinstance(context, ErrorResponse):  # no envelope: -32602 naming the missing keys
                await ex.respond(400, encode(context))
            elif isinstance(item, Request):
                await self._stateless.request(ex, item, wants_sse)
            else:
                await self._session_post.accept(ex, None, item)
        else:
            await self._in_session(ex, session_id, version, item, wants_sse)

    async def _in_session(
        self, ex: Exchange, session_id: str | None, version: str | None, item: Message, wants_sse: bool
    ) -> None:
        """A message that must name a live session (and, when it says one, a served version)."""
        state = self.state
        if session_id is None:
            await ex.error(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
            return
        if version is not None and not is_supported(version):
            await ex.error(400, INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version!r}")
            return
        if not state.port.has_session(session_id) and not await state.port.resume_session(session_id):
            await state.unknown_session(ex, session_id)
            return
        if state.not_owner(ex, session_id):
            await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")
            return
        if isinstance(item, Request):
            await self._session_post.request(
                ex, session_id, item, wants_sse, state.session_streams(session_id)
            )
        else:
            await self._session_post.accept(ex, session_id, item)


def mcp_asgi_app(port: ServerPort, options: HttpOptions | None = None, **overrides: Any) -> McpHttpApp:
    """The Streamable HTTP endpoint for `port` as an ASGI application.

    The options are `HttpOptions`' (its docstring, and docs/http.md, say what each does): pass one
    `HttpOptions`, or its fields as keyword arguments (`path="/mcp"`, `allowed_origins=[...]`,
    `json_response=True`, ...), or both (the keywords then win).
    """
    return McpHttpApp(port, HttpOptions.build(options, overrides, where="mcp_asgi_app"))
