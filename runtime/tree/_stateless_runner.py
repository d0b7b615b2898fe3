"""The StatelessRunner: where 2026-07-28 (stateless) requests run.

Each stateless request is a temporary child that is never restarted (a request cannot be replayed), so
instead of a DynamicSupervisor entry per request (a lock, a spec and events each time) the supervisor
child owns one nursery and isolates each request task: a crash answers that request -32603 and nothing
else; stopping the server answers the ones still running. ``max_concurrent`` bounds the work in flight
(``SessionBusy`` beyond it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio
from mcpvisor.supervisors import stop_requested

from ..protocol import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    INTERNAL_ERROR,
    Implementation,
    JsonRpcError,
    Message,
    Request,
    Response,
    StatelessRequestContext,
    error_response,
    finish_stateless_result,
    from_wire,
)
from ..server._env import NoSessionState
from ..server._errors import CrashSession
from ..server._state_handle import handle_label
from ._request_env import StatelessRequestEnv
from ._served_server import ServedServer
from ._session_actor import HandleRequest, error_for

if TYPE_CHECKING:
    from ._handle_table import HandleTable
    from ._state_store_server import StateStoreClient

logger = logging.getLogger("mcpvisor.runtime.tree")


class StatelessRunner:
    """A supervisor child (start function) running stateless requests in its own nursery."""

    def __init__(
        self,
        server: ServedServer,
        handle_request: HandleRequest,
        *,
        max_concurrent: int,
        on_stop: Callable[[], Awaitable[None]] | None = None,
        store: StateStoreClient | None = None,
        handles: HandleTable | None = None,
    ) -> None:
        #: where a request bound to a state handle keeps its values, and the live handles
        self.store = store
        self.handles = handles
        self.server = server
        self.handle_request = handle_request
        self.max_concurrent = max_concurrent
        #: awaited when asked to stop, before the requests still running are cancelled: the chance to
        #: end long-lived ones (listen streams) with a proper final answer
        self.on_stop = on_stop
        self.active = 0
        #: The server's ``TaskClient``, set by ``start_server`` (None: requests get no tasks)
        self.tasks: Any = None
        self._nursery: trio.Nursery | None = None
        #: id(replies) -> the cancel scope of the request answering on it (see ``cancel``)
        self._scopes: dict[int, trio.CancelScope] = {}

    def __repr__(self) -> str:  # the supervision log shows it as a child's handle
        return f"<StatelessRunner {self.active} of at most {self.max_concurrent} stateless requests>"

    async def __call__(
        self, *, task_status: trio.TaskStatus[StatelessRunner] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self)
            try:
                await stop_requested().wait()
                if self.on_stop is not None:
                    await self.on_stop()
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def full(self) -> bool:
        return self.active >= self.max_concurrent

    def start(
        self,
        request: Request,
        replies: trio.MemorySendChannel[Message],
        ctx: StatelessRequestContext,
        handler: HandleRequest | None = None,
        *,
        caller: Any = None,
    ) -> None:
        """Run ``request`` (with ``handler`` instead of the dispatcher when given); ``caller`` is the
        transport's ``Requester`` (headers, principal), None over stdio and in memory."""
        assert self._nursery is not None
        self.active += 1
        scope = self._scopes[id(replies)] = trio.CancelScope()
        run = functools.partial(self._run, caller=caller)
        self._nursery.start_soon(run, request, replies, ctx, scope, handler or self.handle_request)

    def cancel(self, replies: trio.MemorySendChannel[Message]) -> bool:
        """Cancel the request answering on ``replies`` (its client went away); False if it is done.

        A request has no session and, over HTTP, no id its client could name, so its replies channel is
        what identifies it: the one thing the transport and the runner both hold.
        """
        scope = self._scopes.get(id(replies))
        if scope is None:
            return False
        scope.cancel()
        return True

    def _server_info(self) -> Implementation | None:
        info = getattr(self.server, "server_info", None)
        if isinstance(info, Implementation):
            return info
        if isinstance(info, Mapping):
            return from_wire(info, Implementation)
        return None

    async def _run(
        self,
        request: Request,
        replies: trio.MemorySendChannel[Message],
        ctx: StatelessRequestContext,
        scope: trio.CancelScope,
        handler: HandleRequest,
        *,
        caller: Any = None,
    ) -> None:
        params = request.params if request.params is not None else {}
        meta = params.get("_meta")
        meta = meta if isinstance(meta, Mapping) else {}
        capabilities = meta.get(CLIENT_CAPABILITIES_META_KEY)
        info = meta.get(CLIENT_INFO_META_KEY)
        env = StatelessRequestEnv(
            request,
            replies,
            protocol_version=ctx.protocol_version,
            client_capabilities=capabilities if isinstance(capabilities, Mapping) else {},
            client_info=info if isinstance(info, Mapping) else None,
            progress_token=ctx.progress_token,
            log_level=ctx.log_level,
            store=self.store,
            handles=self.handles,
            tasks=self.tasks,
            caller=caller,
        )
        answered = False
        try:
            with scope:
                final = await self._answer(handler, request, env)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await replies.send(final)
                answered = True
        finally:
            del self._scopes[id(replies)]
            self.active -= 1
            # Cancelled by its client: nothing more may be sent for it (2026-07-28 cancellation).
            if not answered and not scope.cancel_called:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                    replies.send_nowait(error_response(request.id, INTERNAL_ERROR, "server is shutting down"))
            replies.close()

    async def _answer(self, handler: HandleRequest, request: Request, env: StatelessRequestEnv) -> Message:
        """The request's final message: its result, or the error it ended with."""
        try:
            result = await handler(self.server, request, env)
            return Response(request.id, finish_stateless_result(request.method, result, self._server_info()))
        except CrashSession as exc:
            crash = type(exc).__name__
            handle = env.handle
            if handle is not None and env.crash_handle(exc):  # a request bound to a handle crashes its actor
                logger.warning(
                    "stateless %s crashed state handle %s: %r", request.method, handle_label(handle), exc
                )
                return error_response(
                    request.id,
                    INTERNAL_ERROR,
                    # True whether its keeper restarts the actor or gives up on it (restart
                    # intensity): either way the next use of the handle carries on from the store.
                    f"state handle {handle} crashed ({crash}); its actor is restarted under the same handle"
                    " (at once, or at its next use if it crashed too often) with its values kept; this "
                    "request did not complete: it may be sent again",
                )
            logger.warning(
                "stateless %s raised CrashSession (%r): there is no session or handle to restart",
                request.method,
                exc,
            )
            return error_response(
                request.id,
                INTERNAL_ERROR,
                "the handler crashed its session, but this 2026-07-28 request has none (and names no "
                "state handle)",
            )
        except Exception as exc:
            if not isinstance(exc, NoSessionState | JsonRpcError):
                logger.exception("stateless %s (id %r) failed", request.method, request.id)
            return error_for(request.id, exc)
