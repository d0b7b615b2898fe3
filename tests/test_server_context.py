"""Context: session state through the env's codec bytes, progress, logs, and requests to the client."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _fake_env import FakeEnv, stateless_env
from mcpvisor.backends import decode
from mcpvisor.runtime.protocol import JsonRpcError, PromptMessage, Request, TextContent, to_json
from mcpvisor.runtime.server import Context, MissingClientCapability, NoSessionState, Server, handle_request


async def test_state_round_trips_across_requests_of_one_session() -> None:
    first, second = FakeEnv(), FakeEnv(request_id=2)
    second.store = first.store  # two requests, one session
    ctx = Context(first)
    await ctx.set_state("cart", {"items": ["apple", 2], "big": 2**70})
    assert decode(first.store["cart"]) == {"items": ["apple", 2], "big": 2**70}
    later = Context(second)
    assert await later.get_state("cart") == {"items": ["apple", 2], "big": 2**70}
    assert await later.get_state("missing", default="d") == "d"
    await later.set_state("none", None)
    assert await later.get_state("none", default="d") is None  # a stored None is not a missing key
    await later.delete_state("cart")
    await later.delete_state("never-set")
    assert await Context(first).get_state("cart") is None


async def test_request_local_values_never_reach_the_env() -> None:
    env = FakeEnv()
    ctx = Context(env)
    lock = trio.Lock()
    await ctx.set_state("lock", lock, serializable=False)
    assert await ctx.get_state("lock") is lock
    assert env.store == {} and env.store_calls == 0
    assert await Context(env).get_state("lock") is None  # another request does not see it
    # A stored value replaces the local one, and the local one shadows the store until then.
    await ctx.set_state("k", "stored")
    await ctx.set_state("k", "local", serializable=False)
    assert await ctx.get_state("k") == "local" and decode(env.store["k"]) == "stored"
    await ctx.set_state("k", "stored again")
    assert await ctx.get_state("k") == "stored again"


async def test_unserializable_values_name_their_key() -> None:
    env = FakeEnv()
    with pytest.raises(TypeError, match=r"'conn'.*serializable=False"):
        await Context(env).set_state("conn", {"socket": object()})
    assert env.store == {}


async def test_stateless_requests_have_no_session_state() -> None:
    env = stateless_env()
    ctx = Context(env)
    with pytest.raises(NoSessionState):
        await ctx.get_state("k")
    with pytest.raises(NoSessionState):
        await ctx.set_state("k", 1)
    await ctx.set_state("scratch", 1, serializable=False)  # request-local values still work
    assert await ctx.get_state("scratch") == 1
    await ctx.delete_state("scratch")


async def test_a_tool_using_state_on_a_stateless_request_gets_a_clear_error() -> None:
    server = Server("s")

    @server.tool
    async def counter(ctx: Context) -> int:
        count: int = await ctx.get_state("count", 0)
        await ctx.set_state("count", count + 1)
        return count + 1

    env = FakeEnv()
    for expected in (1, 2):
        result = await handle_request(server, Request(1, "tools/call", {"name": "counter"}), env)
        assert result["structuredContent"] == {"result": expected}
    with pytest.raises(JsonRpcError) as info:
        await handle_request(server, Request(1, "tools/call", {"name": "counter"}), stateless_env())
    assert info.value.code == -32603 and "stateless" in info.value.message


async def test_progress_is_sent_only_with_a_token() -> None:
    quiet = FakeEnv()
    await Context(quiet).report_progress(1, 2)
    assert quiet.sent == []
    env = FakeEnv(progress_token="tok")
    await Context(env).report_progress(1, 4, "a quarter")
    (note,) = env.sent
    assert to_json(note)["params"] == {
        "progressToken": "tok",
        "progress": 1,
        "total": 4,
        "message": "a quarter",
    }
    assert note.method == "notifications/progress"


async def test_logs_follow_the_clients_threshold() -> None:
    env = FakeEnv(log_level="warning")
    ctx = Context(env)
    await ctx.debug("no")
    await ctx.info("no")
    await ctx.warning("yes", logger="db")
    await ctx.error({"code": 7})
    await ctx.log("critical", "yes")
    assert [n.params for n in env.sent] == [
        {"level": "warning", "data": "yes", "logger": "db"},
        {"level": "error", "data": {"code": 7}},
        {"level": "critical", "data": "yes"},
    ]
    silent = FakeEnv(log_level=None)
    await Context(silent).error("nobody asked")
    assert silent.sent == []
    with pytest.raises(ValueError, match="log level"):
        await ctx.log("loud", "x")  # type: ignore[arg-type]


async def test_elicit_needs_the_capability_and_returns_the_answer() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    without = FakeEnv()
    with pytest.raises(MissingClientCapability) as info:
        await Context(without).elicit("Your name?", schema)
    assert info.value.code == -32021 and "elicitation" in info.value.message
    assert info.value.data == {"requiredCapabilities": {"elicitation": {}}}
    assert without.client_requests == []
    env = FakeEnv(
        client_capabilities={"elicitation": {}},
        client_answers={"elicitation/create": {"action": "accept", "content": {"name": "Ada"}}},
    )
    answer = await Context(env).elicit("Your name?", schema, timeout=5)
    assert answer == {"action": "accept", "content": {"name": "Ada"}}
    assert env.client_requests == [
        ("elicitation/create", {"message": "Your name?", "requestedSchema": schema}, 5)
    ]


async def test_sample_builds_messages_and_options() -> None:
    with pytest.raises(MissingClientCapability):
        await Context(FakeEnv()).sample("hi", 10)
    reply = {"role": "assistant", "content": {"type": "text", "text": "4"}, "model": "m"}
    env = FakeEnv(client_capabilities={"sampling": {}}, client_answers={"sampling/createMessage": reply})
    got = await Context(env).sample(
        ["2+2?", ("assistant", "thinking"), PromptMessage("user", TextContent("go"))],
        50,
        system_prompt="Be terse.",
        temperature=0.0,
    )
    assert got == reply
    ((method, params, _),) = env.client_requests
    assert method == "sampling/createMessage"
    assert params == {
        "messages": [
            {"role": "user", "content": {"type": "text", "text": "2+2?"}},
            {"role": "assistant", "content": {"type": "text", "text": "thinking"}},
            {"role": "user", "content": {"type": "text", "text": "go"}},
        ],
        "maxTokens": 50,
        "systemPrompt": "Be terse.",
        "temperature": 0.0,
    }


async def test_client_errors_propagate_to_the_handler() -> None:
    env = FakeEnv(
        client_capabilities={"roots": {}},
        client_answers={"roots/list": JsonRpcError(-32601, "no roots here")},
    )
    with pytest.raises(JsonRpcError, match="no roots here"):
        await Context(env).list_roots()
    env.client_answers["roots/list"] = {"roots": [{"uri": "file:///w", "name": "w"}]}
    assert await Context(env).list_roots() == [{"uri": "file:///w", "name": "w"}]


async def test_identity_comes_from_the_env() -> None:
    env: Any = FakeEnv(
        session_id="abc",
        request_id="r-9",
        protocol_version="2025-06-18",
        client_capabilities={"roots": {}},
        client_info={"name": "cli", "version": "1"},
    )
    ctx = Context(env)
    assert (ctx.session_id, ctx.request_id, ctx.protocol_version) == ("abc", "r-9", "2025-06-18")
    assert ctx.client_capabilities == {"roots": {}} and ctx.client_info == {"name": "cli", "version": "1"}


async def test_close_sse_stream_sends_the_control_item_on_the_request_stream() -> None:
    from mcpvisor.runtime.tree._port import CLOSE_SSE_STREAM, CloseSseStream

    env = FakeEnv()
    await Context(env).close_sse_stream()
    assert env.sent == [CloseSseStream()] and env.sent[0].method == CLOSE_SSE_STREAM
