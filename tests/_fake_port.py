"""A scripted `ServerPort` that follows the documented semantics, for transport tests.

Request methods pick a behaviour: `initialize` (answers; -32602 without params), `echo`, `progress`
(three progress notifications, then the answer), `ask` (a server-to-client request, answered with what
the client sent back), `gate` (waits until the test releases it), `vanish` (closes replies with no
answer), `notify` (pushes a message onto the standalone stream). A session-less (`None`) request gets
the runtime's envelope check (`extract_request_context`: -32602, -32022, -32601 ...), then
`{"stateless": true}` (after one progress notification when its `name` is `progress`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from mcpvisor.runtime.protocol import (
    INVALID_PARAMS,
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    error_response,
    extract_request_context,
)
from mcpvisor.runtime.server import SessionBusy, UnknownSession
from mcpvisor.runtime.tree._port import CloseSseStream


@attrs.define(eq=False)
class FakeSession:
    id: str
    received: list[Message] = attrs.field(factory=list)
    standalone: trio.MemorySendChannel[Message] | None = None
    answers: dict[str | int, trio.MemorySendChannel[Message]] = attrs.field(factory=dict)


@attrs.define(eq=False)
class FakePort:
    nursery: trio.Nursery
    sessions: dict[str, FakeSession] = attrs.field(factory=dict)
    closed: list[str] = attrs.field(factory=list)
    stateless_received: list[Message] = attrs.field(factory=list)
    cancelled_stateless: list[trio.MemorySendChannel[Message]] = attrs.field(factory=list)
    busy: bool = False
    broken: bool = False
    gate: trio.Event = attrs.field(factory=trio.Event)
    #: The ``Requester`` of the latest submit (headers, principal), as the transport passed it.
    last_caller: Any = None
    _ids: Any = attrs.field(factory=lambda: itertools.count(1))

    async def create_session(self) -> str:
        session_id = f"sess-{next(self._ids)}"
        self.sessions[session_id] = FakeSession(session_id)
        return session_id

    def has_session(self, session_id: str) -> bool:
        return session_id in self.sessions

    async def resume_session(self, session_id: str) -> bool:
        return session_id in self.sessions

    async def submit(
        self,
        session_id: str | None,
        message: Message,
        replies: trio.MemorySendChannel[Message] | None = None,
        caller: Any = None,
    ) -> None:
        self.last_caller = caller
        if session_id is not None and session_id not in self.sessions:
            raise UnknownSession(session_id)
        if self.busy:
            raise SessionBusy(session_id, 1.5)
        if self.broken:
            raise RuntimeError("secret internals")
        if isinstance(message, Request) and replies is None:
            raise TypeError("a Request needs a replies channel")
        if session_id is None:
            self.stateless_received.append(message)
        else:
            session = self.sessions[session_id]
            session.received.append(message)
            if isinstance(message, Response | ErrorResponse) and message.id in session.answers:
                await session.answers.pop(message.id).send(message)
        if isinstance(message, Request):
            assert replies is not None
            self.nursery.start_soon(self._serve, session_id, message, replies)

    async def _serve(
        self, session_id: str | None, request: Request, replies: trio.MemorySendChannel[Message]
    ) -> None:
        async with replies:
            rid = request.id
            method = request.method
            if session_id is None:
                # What the runtime does first with a session-less request: check its envelope.
                context = extract_request_context(request)
                if isinstance(context, ErrorResponse):
                    await replies.send(context)
                elif request.params and request.params.get("name") == "poll":
                    await replies.send(CloseSseStream())  # a stateless stream cannot be resumed: ignored
                    await replies.send(
                        Notification("notifications/progress", {"progressToken": "t", "progress": 1})
                    )
                    await replies.send(CloseSseStream())
                    await replies.send(Response(rid, {"stateless": True, "method": method}))
                elif request.params and request.params.get("name") == "progress":
                    await replies.send(
                        Notification("notifications/progress", {"progressToken": "t", "progress": 1})
                    )
                    await replies.send(Response(rid, {"stateless": True, "method": method}))
                else:
                    await replies.send(Response(rid, {"stateless": True, "method": method}))
            elif method == "initialize":
                if not request.params:
                    await replies.send(error_response(rid, INVALID_PARAMS, "bad initialize"))
                else:
                    await replies.send(Response(rid, {"protocolVersion": "2025-11-25", "capabilities": {}}))
            elif method == "echo":
                await replies.send(Response(rid, dict(request.params or {})))
            elif method == "progress":
                for step in range(3):
                    await replies.send(
                        Notification("notifications/progress", {"progressToken": "t", "progress": step})
                    )
                await replies.send(Response(rid, {"done": True}))
            elif method == "ask":
                send_answer, answer = trio.open_memory_channel[Message](1)
                self.sessions[session_id].answers["srv-1"] = send_answer
                await replies.send(Request("srv-1", "elicitation/create", {"message": "name?"}))
                got = await answer.receive()
                payload = got.result if isinstance(got, Response) else {"error": got.error.code}  # type: ignore[union-attr]
                await replies.send(Response(rid, {"answer": dict(payload)}))
            elif method == "gate":
                await replies.send(Notification("notifications/message", {"level": "info", "data": "wait"}))
                await self.gate.wait()
                await replies.send(Response(rid, {"released": True}))
            elif method == "poll":  # the handler ends its SSE connection early (ctx.close_sse_stream)
                await replies.send(Notification("notifications/message", {"level": "info", "data": "before"}))
                await replies.send(CloseSseStream())
                await self.gate.wait()
                await replies.send(Response(rid, {"polled": True}))
            elif method == "vanish":
                return
            elif method == "notify":
                session = self.sessions[session_id]
                if session.standalone is not None:
                    await session.standalone.send(
                        Notification("notifications/tools/list_changed", dict(request.params or {}))
                    )
                await replies.send(Response(rid, {}))
            else:
                await replies.send(error_response(rid, -32601, f"Method not found: {method}"))

    def cancel_stateless(self, replies: trio.MemorySendChannel[Message]) -> None:
        self.cancelled_stateless.append(replies)

    def standalone_stream(self, session_id: str) -> trio.MemoryReceiveChannel[Message]:
        session = self.sessions.get(session_id)
        if session is None:
            raise UnknownSession(session_id)
        if session.standalone is not None:
            session.standalone.close()
        send, receive = trio.open_memory_channel[Message](16)
        session.standalone = send
        return receive

    async def close_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self.closed.append(session_id)
            if session.standalone is not None:
                session.standalone.close()


@asynccontextmanager
async def fake_port() -> AsyncIterator[FakePort]:
    async with trio.open_nursery() as nursery:
        yield FakePort(nursery)
        nursery.cancel_scope.cancel()
