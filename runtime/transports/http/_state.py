"""`AppState`: what one `McpHttpApp` knows, and the session lookups every route shares.

The routes (`_routes`, `_session_post`, `_stateless`, `_streams`) are small collaborators holding a
reference to this one record, so the state has one owner and each route's module holds one job; the
lookups here answer the client themselves (400, 404, 429, 503) when the answer is no.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ...auth import AuthSettings, Principal, check_scopes
from ...protocol import INTERNAL_ERROR, INVALID_REQUEST, Request, is_stateless_request
from ...server._caller import owner_key
from ...tree._cluster_stream_log import SharedStreamLog
from ...tree._port import (
    SERVER_BUSY,
    RequestLimitReached,
    ServerPort,
    SessionBusy,
    SessionLimitReached,
    TransportError,
    UnknownSession,
)
from ...tree._stats import ServerStats
from ._auth import answer_refusal
from ._events import ReplayStream, SessionStreams, cluster_keys
from ._exchange import Exchange
from ._guard import DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_ORIGINS, AllowList
from ._headers import SESSION_HEADER, VERSION_HEADER
from ._options import HttpOptions
from ._streaming import write_stream


@attrs.define(eq=False)
class AppState:
    """One app's options, the port it drives, and the replay logs of its sessions' streams."""

    port: ServerPort
    options: HttpOptions
    #: the endpoint path without its trailing slash ("/" for the root), None for every path
    path: str | None
    origins: AllowList
    hosts: AllowList
    stats: ServerStats
    auth: AuthSettings | None
    param_headers_of: Callable[[str], Mapping[str, str]] | None
    tool_scopes: Callable[[str], tuple[str, ...]]
    all_scopes: Callable[[], list[str]]
    streams: dict[str, SessionStreams] = attrs.field(factory=dict)
    initializes: int = 0

    @classmethod
    def of(cls, port: ServerPort, options: HttpOptions) -> AppState:
        """The state for `port`, reading what the port offers beyond `ServerPort` when it has it."""
        # Count into the running server's stats when the port has them (``RunningServer.stats``), so
        # one object tells what the server and this transport dropped or refused.
        stats = getattr(port, "stats", None)
        # SEP-2243 needs the tools' schemas (their `x-mcp-header` annotations); a `RunningServer`
        # port carries its `Server`. Any other port (a test fake, a custom runtime) is not checked.
        server = getattr(port, "server", None)
        # Authentication (docs/auth.md): given here, or configured on the running server / Server.
        found = options.auth if options.auth is not None else getattr(port, "auth", None)
        path = options.path
        return cls(
            port=port,
            options=options,
            path=None if path is None else (path.rstrip("/") or "/"),
            origins=AllowList.of(options.allowed_origins, DEFAULT_ALLOWED_ORIGINS),
            hosts=AllowList.of(options.allowed_hosts, DEFAULT_ALLOWED_HOSTS),
            stats=stats if isinstance(stats, ServerStats) else ServerStats(),
            auth=found if isinstance(found, AuthSettings) else None,
            param_headers_of=getattr(server, "param_headers", None),
            tool_scopes=getattr(server, "tool_scopes", lambda _: ()),
            all_scopes=getattr(server, "all_tool_scopes", list),
        )

    def param_headers(self, tool: Any) -> Mapping[str, str]:
        if self.param_headers_of is None or not isinstance(tool, str):
            return {}
        return self.param_headers_of(tool)

    # -- the replay logs ----------------------------------------------------------------------------

    def session_streams(self, session_id: str) -> SessionStreams:
        streams = self.streams.get(session_id)
        if streams is None:
            log = self.shared_log
            if log is None:
                streams = SessionStreams(
                    self.options.max_streams_per_session,
                    self.options.max_events_per_stream,
                    on_drop=self.stats.count_dropped,
                )
            else:
                streams = SessionStreams(
                    self.options.max_streams_per_session,
                    self.options.max_events_per_stream,
                    on_drop=self.stats.count_dropped,
                    on_open=functools.partial(log.track, session_id),
                    keys=cluster_keys(),
                    kind_in_key=True,
                )
            self.streams[session_id] = streams
        return streams

    def forget(self, session_id: str) -> None:
        self.streams.pop(session_id, None)
        log = self.shared_log
        if log is not None:
            log.untrack_session(session_id)

    @property
    def shared_log(self) -> SharedStreamLog | None:
        """The cluster's SSE event log in Redis when the port is one node of many (else None)."""
        log = getattr(self.port, "stream_log", None)
        return log if isinstance(log, SharedStreamLog) else None

    def sweep(self) -> None:
        """Drop the replay logs of sessions that ended without a DELETE (expired, crashed for good).

        Runs on every 64th `initialize`, so its cost (one `has_session` per logged session) is spread.
        """
        self.initializes += 1
        if self.initializes % 64:
            return
        for session_id in [sid for sid in self.streams if not self.port.has_session(sid)]:
            del self.streams[session_id]

    async def follow(self, ex: Exchange, stream: ReplayStream, **how: Any) -> bool:
        """``write_stream`` with this app's retry hint and keep-alive."""
        return await write_stream(
            ex, stream, retry_ms=self.options.retry_ms, keepalive=self.options.keepalive, **how
        )

    # -- session lookups ----------------------------------------------------------------------------

    async def unknown_session(self, ex: Exchange, session_id: str) -> None:
        self.forget(session_id)
        await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")

    def not_owner(self, ex: Exchange, session_id: str) -> bool:
        """True when authentication is on and the session is another principal's (who then gets the
        404 of an unknown session: a 403 would confirm that the id exists)."""
        if self.auth is None:
            return False
        owner: Callable[[str], str | None] | None = getattr(self.port, "session_owner", None)
        return owner is None or owner(session_id) != owner_key(ex.caller.principal)

    async def scopes_refused(self, ex: Exchange, item: Any) -> bool:
        """A ``tools/call`` whose principal lacks the tool's ``required_scopes``: 403, answered."""
        if self.auth is None or not isinstance(item, Request) or item.method != "tools/call":
            return False
        name = (item.params or {}).get("name")
        principal = ex.caller.principal
        if not isinstance(name, str) or not isinstance(principal, Principal):
            return False
        refusal = check_scopes(self.auth, principal, self.tool_scopes(name))
        if refusal is None:
            return False
        await answer_refusal(ex, refusal, item.id)
        return True

    async def live_session(self, ex: Exchange, session_id: str | None) -> str | None:
        """``session_id`` when it names a live session, or one the port resumes from the state store
        (a restarted server, another node); else answers 400 (no Mcp-Session-Id) or 404 (unknown or
        expired) and returns None."""
        if session_id is None:
            await ex.error(400, INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
            return None
        if not self.port.has_session(session_id) and not await self.port.resume_session(session_id):
            await self.unknown_session(ex, session_id)
            return None
        if self.not_owner(ex, session_id):
            await ex.error(404, INVALID_REQUEST, "Not Found: unknown or expired session")
            return None
        return session_id

    async def transport_error(self, ex: Exchange, exc: TransportError) -> None:
        if isinstance(exc, UnknownSession):
            await self.unknown_session(ex, exc.session_id)
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


def stateless_client(headers: dict[str, str]) -> bool:
    """The headers of a 2026-07-28 client: no session, and that revision's version header."""
    return is_stateless_request(
        None, session_id=headers.get(SESSION_HEADER), protocol_version=headers.get(VERSION_HEADER)
    )
