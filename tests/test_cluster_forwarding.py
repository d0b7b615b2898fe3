"""What a forwarded request keeps on its owner (issue 11): its client requests, cancellation, caller.

Three nodes run in this process on one private redis-server. The session is owned by node A; the
client's request comes in through B, as a round-robin balancer sends it, and everything the client
sends afterwards about that request (its answer to an elicitation, a ``notifications/cancelled``, a
DELETE) may arrive through any node: A, B, or C. The owner must see each, and nothing may hang. The
last test serves two nodes over real HTTP with authentication: a principal's session is served to it
through both nodes and is unknown (404) to another principal on both.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
from _http_messages import INIT, JSON_ONLY
from mcpvisor.backends import RedisSessionStore
from mcpvisor.runtime.auth import AuthSettings, Principal
from mcpvisor.runtime.protocol import (
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    cancelled_notification,
)
from mcpvisor.runtime.server import Context, Server, start_server
from mcpvisor.runtime.server._caller import Requester
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.tree._cluster_owner import GONE
from mcpvisor.runtime.tree._port import UnknownSession
from mcpvisor.runtime.tree._session_settings import SETTINGS_KEY
from mcpvisor.runtime.tree._shared_session import is_live
from test_cluster_bus import make_app

CAPS = {"elicitation": {}, "sampling": {}, "roots": {}}


def app_with_client_requests(cancelled: list[str]) -> Server:
    app = make_app()

    @app.tool()
    async def ask(ctx: Context) -> str:
        answer = await ctx.elicit("name?", {"type": "object", "properties": {"name": {"type": "string"}}})
        return f"hello {answer['content']['name']}"

    @app.tool()
    async def sample_and_roots(ctx: Context) -> str:
        sampled = await ctx.sample("say hi", 10)
        roots = await ctx.list_roots()
        return f"{sampled['content']['text']} {len(roots)}"

    @app.tool()
    async def forever(ctx: Context) -> str:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.append(str(ctx.request_id))
        return "never"

    @app.tool()
    async def whoami(ctx: Context) -> str:
        principal = ctx.principal
        return "nobody" if principal is None else f"{principal.subject} {sorted(principal.scopes)}"

    return app


@asynccontextmanager
async def cluster(url: str, prefix: str, count: int, first: int = 0, **how: Any) -> AsyncIterator[list[Any]]:
    async with AsyncExitStack() as stack:
        running = []
        for i in range(count):
            store = RedisSessionStore(url, prefix=prefix)
            stack.push_async_callback(store.aclose)
            cancelled: list[str] = []
            node = await stack.enter_async_context(
                start_server(
                    app_with_client_requests(cancelled),
                    session_state_store=store,
                    node_id=f"n{first + i}",
                    **how,
                )
            )
            node.test_cancelled = cancelled
            running.append(node)
        yield running


async def new_session(node: Any, owner: str | None = None) -> str:
    """A handshake on ``node`` (it owns the session), declaring elicitation, sampling and roots."""
    sid: str = await node.create_session(owner=owner)
    replies, answers = trio.open_memory_channel[Message](math.inf)
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": CAPS,
        "clientInfo": {"name": "t", "version": "1"},
    }
    await node.submit(sid, Request(0, "initialize", params), replies)
    assert isinstance(await answers.receive(), Response)
    await node.submit(sid, Notification("notifications/initialized", None))
    return sid


async def send(node: Any, sid: str, message: Message) -> None:
    """What the HTTP transport does with a POST: resume (or find the owner), then submit."""
    assert await node.resume_session(sid)
    await node.submit(sid, message)


async def test_client_requests_of_a_forwarded_request_are_answered_through_any_node(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 3) as (a, b, c):
        sid = await new_session(a)
        assert await b.resume_session(sid) and not b.has_session(sid)
        for through, request_id in ((a, 1), (b, 2), (c, 3)):
            replies, answers = trio.open_memory_channel[Message](math.inf)
            args = {"name": "ask", "arguments": {}}
            await b.submit(sid, Request(request_id, "tools/call", args), replies)
            with trio.fail_after(10):
                asked = await answers.receive()
                assert isinstance(asked, Request) and asked.method == "elicitation/create"
                answer = Response(asked.id, {"action": "accept", "content": {"name": through.node_id}})
                await send(through, sid, answer)
                final = await answers.receive()
            assert isinstance(final, Response), final
            assert final.result["content"][0]["text"] == f"hello {through.node_id}"
        # sampling and roots, answered through C and A in turn
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(9, "tools/call", {"name": "sample_and_roots", "arguments": {}}), replies)
        with trio.fail_after(10):
            for through, result in (
                (c, {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}),
                (a, {"roots": [{"uri": "file:///x"}, {"uri": "file:///y"}]}),
            ):
                asked = await answers.receive()
                assert isinstance(asked, Request)
                await send(through, sid, Response(asked.id, result))
            final = await answers.receive()
        assert isinstance(final, Response) and final.result["content"][0]["text"] == "hi 2"
        assert a.has_session(sid) and not b.has_session(sid) and not c.has_session(sid)


@pytest.mark.parametrize("through", [0, 1, 2], ids=["owner", "forwarder", "third"])
async def test_a_forwarded_request_is_cancelled_through_any_node(
    redis_server: str, redis_prefix: str, through: int
) -> None:
    async with cluster(redis_server, redis_prefix, 3) as nodes:
        a, b, _ = nodes
        sid = await new_session(a)
        assert await b.resume_session(sid)
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(7, "tools/call", {"name": "forever", "arguments": {}}), replies)
        with trio.fail_after(10):
            while a.requests_in_flight(sid) == 0:  # noqa: ASYNC110 (it runs on another node)
                await trio.sleep(0.01)
        await send(nodes[through], sid, cancelled_notification(7, "changed my mind"))
        with trio.fail_after(5):  # the forwarding node's stream ends, with no result
            got = [message async for message in answers]
        assert got == []
        assert a.test_cancelled == ["7"] and a.requests_in_flight(sid) == 0
        # the session carries on through the forwarding node
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(8, "tools/call", {"name": "counter", "arguments": {}}), replies)
        with trio.fail_after(5):
            final = await answers.receive()
        assert isinstance(final, Response) and final.result["content"][0]["text"] == "1"


@pytest.mark.parametrize("through", [0, 2], ids=["owner", "third"])
async def test_a_cancellation_that_overtakes_its_forwarded_request_still_cancels_it(
    redis_server: str, redis_prefix: str, through: int
) -> None:
    async with cluster(redis_server, redis_prefix, 3) as nodes:
        a, b, _ = nodes
        sid = await new_session(a)
        assert await b.resume_session(sid)
        # the client's cancellation, sent through another node, reaches the owner first ...
        await send(nodes[through], sid, cancelled_notification(7, "changed my mind"))
        await trio.sleep(0.2)
        # ... then the request itself, forwarded by B: it never runs, and nothing is answered
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(7, "tools/call", {"name": "forever", "arguments": {}}), replies)
        with trio.fail_after(5):
            got = [message async for message in answers]
        assert got == [] and a.requests_in_flight(sid) == 0 and a.test_cancelled == []


ALICE = Principal(
    "alice", issuer="https://idp.example", scopes=frozenset({"mcp:use"}), claims={"sub": "alice"}
)
BOB = Principal("bob", issuer="https://idp.example", scopes=frozenset({"mcp:use"}))


async def test_a_forwarded_request_runs_as_its_caller_and_the_owner_binding_holds_on_every_node(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 3) as (a, b, c):
        sid = await new_session(a, owner=ALICE.key)
        for node, request_id in ((b, 1), (c, 2)):
            assert await node.resume_session(sid)
            replies, answers = trio.open_memory_channel[Message](math.inf)
            caller = Requester({"x-trace": "t1"}, ALICE)
            await node.submit(
                sid, Request(request_id, "tools/call", {"name": "whoami", "arguments": {}}), replies, caller
            )
            with trio.fail_after(10):
                final = await answers.receive()
            assert isinstance(final, Response), final
            assert final.result["content"][0]["text"] == "alice ['mcp:use']"
        for node in (a, b, c):
            assert await node.resume_session(sid)
            # the HTTP transport's check (``not_owner``): Alice's session is Alice's on every node
            assert node.session_owner(sid) == ALICE.key != BOB.key
        assert not b.has_session(sid) and not c.has_session(sid)


async def test_a_delete_through_a_non_owner_ends_the_session_everywhere_before_it_returns(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 3) as (a, b, c):
        sid = await new_session(a)
        assert await b.resume_session(sid) and await c.resume_session(sid)
        with trio.fail_after(10):
            await b.close_session(sid)
        assert not a.has_session(sid)  # ended on the owner before the DELETE returned
        assert not is_live(await a.store.get(sid, SETTINGS_KEY))
        for node in (a, b, c):
            assert not await node.resume_session(sid)
        # a request a node still routes to the old owner fails clearly, at once, not "retry"
        replies, answers = trio.open_memory_channel[Message](math.inf)
        try:
            await c.submit(sid, Request(5, "tools/call", {"name": "counter", "arguments": {}}), replies)
        except UnknownSession:
            return
        with trio.fail_after(5):
            final = await answers.receive()
        assert isinstance(final, ErrorResponse)
        assert "retry" not in final.error.message and "ended" in final.error.message, final


async def test_a_delete_through_a_non_owner_whose_owner_died_still_ends_the_session(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 1, node_ttl=1.0) as (b,):
        async with cluster(redis_server, redis_prefix, 1, first=1, node_ttl=1.0) as (a,):
            sid = await new_session(a)
            assert await b.resume_session(sid) and not b.has_session(sid)
            # A goes silent (as if SIGKILLed): it serves nothing forwarded and renews no lease
            assert a.ownership is not None
            a.ownership.owned.clear()
            served: list[str] = []

            async def deaf(event: Any, submit: Any) -> None:
                served.append(event.session_id)

            a.ownership.serve = deaf
            with trio.fail_after(10):
                await b.close_session(sid)
            assert served == [sid]  # the DELETE went to A first, which never answered
            assert not is_live(await b.store.get(sid, SETTINGS_KEY))  # B ended it in the store
            with trio.fail_after(5):  # and A, which heard the end on the bus, ends its actor
                while a.has_session(sid):  # noqa: ASYNC110
                    await trio.sleep(0.01)
        assert not await b.resume_session(sid)


async def test_a_request_forwarded_to_an_owner_that_stopped_serving_it_runs_on_the_sender(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 2) as (a, b):
        sid = await new_session(a)
        assert await b.resume_session(sid) and not b.has_session(sid)
        # A's actor stops (idle on A): the session stays in the store, B still thinks A owns it
        slot = a.sessions.get(sid)
        a._close_idle(slot)
        with trio.fail_after(10):
            await slot.done.wait()
        assert b.ownership.remote.get(sid) == "n0"
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(3, "tools/call", {"name": "counter", "arguments": {}}), replies)
        with trio.fail_after(10):
            final = await answers.receive()
        assert isinstance(final, Response) and final.result["content"][0]["text"] == "1"
        assert b.has_session(sid) and not a.has_session(sid)


async def test_an_owner_that_keeps_refusing_as_gone_while_holding_the_lease_gives_a_bounded_error(
    redis_server: str, redis_prefix: str
) -> None:
    async with cluster(redis_server, redis_prefix, 2) as (a, b):
        sid = await new_session(a)
        assert await b.resume_session(sid)
        refused: list[str] = []

        async def stopping(event: Any, submit: Any) -> None:
            # A's actor is stopping: it answers "gone", and releases its lease only later
            refused.append(event.token)
            a.ownership._refuse(event, GONE)

        a.ownership.serve = stopping
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(4, "tools/call", {"name": "counter", "arguments": {}}), replies)
        with trio.fail_after(10):
            final = await answers.receive()
        assert isinstance(final, ErrorResponse) and final.error.data == {"retryable": True}, final
        assert "stopped or does not answer" in final.error.message
        assert len(refused) == 1  # B waited for A's lease (a third of node_ttl), never asked A again


async def until(predicate: Any, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 (the effect is another node's, through Redis)
            await trio.sleep(0.01)


async def test_a_request_for_an_owner_nobody_listens_for_goes_to_the_real_one(
    redis_server: str, redis_prefix: str
) -> None:
    # node_ttl 30: the lease watch (every 10 s) is not what saves the request here
    async with cluster(redis_server, redis_prefix, 2, node_ttl=30.0) as (a, b):
        sid = await new_session(a)
        assert await b.resume_session(sid)
        b.ownership.remote[sid] = "ghost"  # stale: a node that is gone
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(6, "tools/call", {"name": "counter", "arguments": {}}), replies)
        with trio.fail_after(3):
            final = await answers.receive()
        assert isinstance(final, Response) and final.result["content"][0]["text"] == "1", final
        assert b.ownership.remote == {sid: "n0"} and a.has_session(sid)


@pytest.mark.parametrize("restarted", ["owner", "forwarder"])
async def test_a_forwarded_request_fails_retryably_when_a_bus_restarts_under_it(
    redis_server: str, redis_prefix: str, restarted: str
) -> None:
    async with cluster(redis_server, redis_prefix, 2, node_ttl=30.0) as (a, b):
        sid = await new_session(a)
        assert await b.resume_session(sid)
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(7, "tools/call", {"name": "forever", "arguments": {}}), replies)
        await until(lambda: a.requests_in_flight(sid) == 1)
        node = a if restarted == "owner" else b
        bus = node.cluster
        bus._nursery.cancel_scope.cancel()  # its Redis connection failed: the supervisor restarts it
        with trio.fail_after(5):
            final = await answers.receive()
        assert isinstance(final, ErrorResponse) and final.error.data == {"retryable": True}, final
        await until(lambda: bus.running)
        # the session carries on through B once the bus is back (a client's retry: resumed, then sent)
        assert await b.resume_session(sid)
        replies, answers = trio.open_memory_channel[Message](math.inf)
        await b.submit(sid, Request(8, "tools/call", {"name": "counter", "arguments": {}}), replies)
        with trio.fail_after(5):
            final = await answers.receive()
        assert isinstance(final, Response) and final.result["content"][0]["text"] == "1", final


class Tokens:
    """A TokenVerifier for the test: the bearer token is the principal's subject (alice, bob)."""

    async def verify_token(self, token: str) -> Principal | None:
        return {"alice": ALICE, "bob": BOB}.get(token)


async def test_over_http_a_principals_session_is_served_through_any_node_and_refused_to_another(
    redis_server: str, redis_prefix: str
) -> None:
    auth = AuthSettings(
        verifier=Tokens(),
        resource_url="https://mcp.test.example/mcp",
        authorization_servers=["https://idp.example"],
    )
    async with cluster(redis_server, redis_prefix, 2, auth=auth) as nodes, trio.open_nursery() as nursery:
        urls = []
        for node in nodes:
            bound = await nursery.start(functools.partial(serve_http, node, port=0))
            urls.append(f"http://127.0.0.1:{bound}/mcp")
        a, b = urls
        async with httpx2.AsyncClient(timeout=10) as http:

            def headers(token: str, sid: str | None = None) -> dict[str, str]:
                out = {**JSON_ONLY, "content-type": "application/json", "authorization": f"Bearer {token}"}
                if sid is not None:
                    out |= {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
                return out

            response = await http.post(a, json=INIT, headers=headers("alice"))
            assert response.status_code == 200, response.text
            sid = response.headers["mcp-session-id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await http.post(a, json=note, headers=headers("alice", sid))).status_code == 202
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}},
            }
            for url in (b, a, b):
                response = await http.post(url, json=call, headers=headers("alice", sid))
                assert response.status_code == 200, response.text
                assert response.json()["result"]["content"][0]["text"] == "alice ['mcp:use']"
            for url in (a, b):  # Bob is told Alice's session does not exist, on every node
                response = await http.post(url, json=call, headers=headers("bob", sid))
                assert response.status_code == 404, response.text
                response = await http.delete(url, headers=headers("bob", sid))
                assert response.status_code == 404, response.text
            assert nodes[0].has_session(sid) and not nodes[1].has_session(sid)
            response = await http.delete(b, headers=headers("alice", sid))  # through the non-owner
            assert response.status_code == 200, response.text
            assert not nodes[0].has_session(sid)
            for url in (a, b):
                response = await http.post(url, json=call, headers=headers("alice", sid))
                assert response.status_code == 404, response.text
        nursery.cancel_scope.cancel()
