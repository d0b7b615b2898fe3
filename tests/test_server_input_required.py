"""SEP-2322 multi round-trip requests: InputRequired answers, the sealed requestState, ctx.elicit & co.
on 2026-07-28 requests; the same handlers in a handshake-era session, where dispatch asks the client."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _fake_env import FakeEnv, stateless_env
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import JsonRpcError, Request, finish_stateless_result
from mcpvisor.runtime.server import Context, InputRequired, Server, handle_request
from mcpvisor.runtime.server._input_rounds import StateSeal

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CAPS = {"elicitation": {}, "sampling": {}, "roots": {}}


def build() -> Server:
    server = Server("rounds")

    @server.tool
    async def greet(ctx: Context) -> str | InputRequired:
        answer = ctx.input_responses.get("user_name")
        if answer is None:
            return InputRequired({"user_name": InputRequired.elicitation("Name?", NAME_SCHEMA)}, state="r1")
        assert ctx.request_state == "r1"
        return f"Hello, {answer['content']['name']}!"

    @server.tool
    async def two_steps(ctx: Context) -> str | InputRequired:
        if ctx.request_state is None:
            return InputRequired({"step1": InputRequired.roots()}, state="1")
        if ctx.request_state == "1":
            roots = ctx.input_responses["step1"]["roots"]
            return InputRequired({"step2": InputRequired.sampling([], 10)}, state=f"2:{len(roots)}")
        return f"{ctx.request_state} {ctx.input_responses['step2']['content']['text']}"

    @server.tool
    async def asks_twice(ctx: Context) -> str:
        first = await ctx.elicit("First?", NAME_SCHEMA)
        roots = await ctx.list_roots()
        return f"{first['content']['name']} {len(roots)}"

    @server.prompt
    async def briefing(ctx: Context) -> str | InputRequired:
        context = ctx.input_responses.get("ctx")
        if context is None:
            return InputRequired({"ctx": InputRequired.elicitation("Context?", NAME_SCHEMA)})
        return f"Brief on {context['content']['name']}"

    @server.resource("mem://secret")
    async def secret(ctx: Context) -> str | InputRequired:
        if "ok" not in ctx.input_responses:
            return InputRequired({"ok": InputRequired.elicitation("Sure?", {"type": "object"})})
        return "s3cret"

    return server


async def call(server: Server, method: str, params: dict[str, Any], env: Any) -> Any:
    result = await handle_request(server, Request(1, method, params), env)
    return finish_stateless_result(method, result)


def accept(**content: Any) -> dict[str, Any]:
    return {"action": "accept", "content": content}


async def test_a_tool_asks_then_completes_with_the_sealed_state_round_tripped() -> None:
    server = build()
    first = await call(server, "tools/call", {"name": "greet"}, stateless_env(client_capabilities=CAPS))
    assert first["resultType"] == "input_required"
    assert first["inputRequests"] == {
        "user_name": {
            "method": "elicitation/create",
            "params": {"message": "Name?", "requestedSchema": NAME_SCHEMA},
        }
    }
    assert isinstance(first["requestState"], str) and first["requestState"] != "r1"  # sealed, not bare
    retry = {"name": "greet", "inputResponses": {"user_name": accept(name="Ada"), "extra": {}}}
    done = await call(
        server,
        "tools/call",
        {**retry, "requestState": first["requestState"]},
        stateless_env(client_capabilities=CAPS),
    )
    assert done["resultType"] == "complete" and done["content"][0]["text"] == "Hello, Ada!"


async def test_a_tampered_or_foreign_state_is_32602_before_the_handler_runs() -> None:
    server = build()
    env = stateless_env(client_capabilities=CAPS)
    state = (await call(server, "tools/call", {"name": "greet"}, env))["requestState"]
    for bad in (state + "-TAMPERED", "x" + state[1:], 42, "no-dot"):
        params = {"name": "greet", "inputResponses": {"user_name": accept(name="A")}, "requestState": bad}
        with pytest.raises(JsonRpcError) as info:
            await call(server, "tools/call", params, env)
        assert info.value.code == -32602 and info.value.data == {"field": "requestState"}
    # A state issued for greet is refused by another tool, and by another Server (another key).
    with pytest.raises(JsonRpcError, match="integrity"):
        await call(server, "tools/call", {"name": "two_steps", "requestState": state}, env)
    with pytest.raises(JsonRpcError, match="integrity"):
        await call(build(), "tools/call", {"name": "greet", "requestState": state}, env)
    # With a shared key, another process (another Server) accepts it.
    key = b"k" * 32
    one, two = Server("a", request_state_key=key), Server("a", request_state_key=key)
    for s in (one, two):
        s.tool(name="greet")(build()._tools["greet"].handler.fn)
    state = (await call(one, "tools/call", {"name": "greet"}, env))["requestState"]
    retry = {"name": "greet", "inputResponses": {"user_name": accept(name="B")}, "requestState": state}
    assert (await call(two, "tools/call", retry, env))["content"][0]["text"] == "Hello, B!"


@pytest.mark.parametrize("responses", [None, 12345, {"user_name": 12345}, ["x"]])
async def test_malformed_input_responses_are_32602(responses: Any) -> None:
    with pytest.raises(JsonRpcError) as info:
        await call(
            build(),
            "tools/call",
            {"name": "greet", "inputResponses": responses},
            stateless_env(client_capabilities=CAPS),
        )
    assert info.value.code == -32602


async def test_multi_round_with_evolving_state() -> None:
    server, env = build(), stateless_env(client_capabilities=CAPS)
    one = await call(server, "tools/call", {"name": "two_steps"}, env)
    assert list(one["inputRequests"]) == ["step1"] and one["inputRequests"]["step1"]["method"] == "roots/list"
    roots = {"roots": [{"uri": "file:///a"}, {"uri": "file:///b"}]}
    two = await call(
        server,
        "tools/call",
        {"name": "two_steps", "inputResponses": {"step1": roots}, "requestState": one["requestState"]},
        env,
    )
    assert list(two["inputRequests"]) == ["step2"] and two["requestState"] != one["requestState"]
    answer = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
    three = await call(
        server,
        "tools/call",
        {"name": "two_steps", "inputResponses": {"step2": answer}, "requestState": two["requestState"]},
        env,
    )
    assert three["resultType"] == "complete" and three["content"][0]["text"] == "2:2 hi"


async def test_ctx_elicit_on_a_stateless_request_becomes_rounds_with_answers_carried() -> None:
    server, env = build(), stateless_env(client_capabilities=CAPS)
    one = await call(server, "tools/call", {"name": "asks_twice"}, env)
    assert one["resultType"] == "input_required" and "requestState" not in one  # nothing to carry yet
    assert one["inputRequests"] == {
        "_ask1": {
            "method": "elicitation/create",
            "params": {"message": "First?", "requestedSchema": NAME_SCHEMA},
        }
    }
    two = await call(
        server,
        "tools/call",
        {
            "name": "asks_twice",
            "inputResponses": {"_ask1": accept(name="Ada")},
            "requestState": one.get("requestState"),
        },
        env,
    )
    assert two["inputRequests"] == {"_ask2": {"method": "roots/list", "params": {}}}
    # Only the latest answer is sent; the first rides in the sealed state.
    three = await call(
        server,
        "tools/call",
        {
            "name": "asks_twice",
            "inputResponses": {"_ask2": {"roots": [{"uri": "file:///r"}]}},
            "requestState": two["requestState"],
        },
        env,
    )
    assert three["content"][0]["text"] == "Ada 1"


async def test_input_requests_need_the_clients_capability() -> None:
    with pytest.raises(JsonRpcError) as info:
        await call(
            build(), "tools/call", {"name": "greet"}, stateless_env(client_capabilities={"sampling": {}})
        )
    assert info.value.code == -32021 and info.value.data == {"requiredCapabilities": {"elicitation": {}}}


async def test_prompts_and_resources_may_ask_too_lists_never_do() -> None:
    server, env = build(), stateless_env(client_capabilities=CAPS)
    asked = await call(server, "prompts/get", {"name": "briefing"}, env)
    assert asked["resultType"] == "input_required" and "requestState" not in asked  # no state: none sent
    got = await call(
        server, "prompts/get", {"name": "briefing", "inputResponses": {"ctx": accept(name="Q3")}}, env
    )
    assert got["resultType"] == "complete" and got["messages"][0]["content"]["text"] == "Brief on Q3"
    read = await call(server, "resources/read", {"uri": "mem://secret"}, env)
    assert read["resultType"] == "input_required" and "ttlMs" not in read
    read = await call(
        server, "resources/read", {"uri": "mem://secret", "inputResponses": {"ok": accept()}}, env
    )
    assert read["contents"][0]["text"] == "s3cret" and read["ttlMs"] == 0
    for method in ("tools/list", "prompts/list"):
        assert (await call(server, method, {}, env))["resultType"] == "complete"


async def test_in_a_handshake_session_dispatch_asks_the_client_and_reruns_the_handler() -> None:
    server = build()
    sampled = {"role": "assistant", "content": {"type": "text", "text": "yo"}, "model": "m"}
    env = FakeEnv(
        client_capabilities=CAPS,
        client_answers={
            "elicitation/create": accept(name="Bo"),
            "roots/list": {"roots": [{"uri": "file:///x"}]},
            "sampling/createMessage": sampled,
        },
    )
    greeted = await handle_request(server, Request(1, "tools/call", {"name": "greet"}), env)
    assert greeted["content"][0]["text"] == "Hello, Bo!" and "resultType" not in greeted
    stepped = await handle_request(server, Request(2, "tools/call", {"name": "two_steps"}), env)
    assert stepped["content"][0]["text"] == "2:1 yo"
    assert [m for m, _, _ in env.client_requests] == [
        "elicitation/create",
        "roots/list",
        "sampling/createMessage",
    ]


async def test_a_handler_that_never_stops_asking_is_cut_off() -> None:
    server = Server("loop")

    @server.tool
    async def forever(ctx: Context) -> InputRequired:
        return InputRequired({"again": InputRequired.roots()})

    env = FakeEnv(client_capabilities=CAPS, client_answers={"roots/list": {"roots": []}})
    with pytest.raises(JsonRpcError) as info:
        await handle_request(server, Request(1, "tools/call", {"name": "forever"}), env)
    assert info.value.code == -32603 and "more than 16 times" in info.value.message
    assert len(env.client_requests) == 16


def test_input_required_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match="requests, a state, or both"):
        InputRequired()
    with pytest.raises(ValueError, match="tools/call"):
        InputRequired({"k": {"method": "tools/call", "params": {}}})
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Server("s", request_state_key=b"short")


async def test_through_the_runtime_both_eras_serve_the_same_handler() -> None:
    from mcpvisor.runtime.server import start_server
    from mcpvisor.runtime.transports.memory import open_memory_client

    server = build()
    with trio.fail_after(10):
        async with start_server(server) as running:
            async with open_memory_client(
                running, protocol_version="2026-07-28", capabilities=CAPS
            ) as client:
                first = await client.call_tool("greet")
                assert first["resultType"] == "input_required" and "ttlMs" not in first
                done = await client.request(
                    "tools/call",
                    {
                        "name": "greet",
                        "inputResponses": {"user_name": accept(name="Cy")},
                        "requestState": first["requestState"],
                    },
                )
                assert done["resultType"] == "complete" and done["content"][0]["text"] == "Hello, Cy!"

            async def answer(method: str, params: Any) -> Any:
                assert method == "elicitation/create"
                return accept(name="Di")

            async with open_memory_client(running, capabilities=CAPS, on_request=answer) as client:
                greeted = await client.call_tool("greet")
                assert greeted["content"][0]["text"] == "Hello, Di!"


async def test_ctx_elicit_in_a_child_task_still_ends_the_round() -> None:
    server = Server("nursery")

    @server.tool
    async def fan_out(ctx: Context) -> str:
        answers: list[str] = []

        async def ask() -> None:
            answers.append((await ctx.elicit("Name?", NAME_SCHEMA))["content"]["name"])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
        return answers[0]

    env = stateless_env(client_capabilities=CAPS)
    first = await call(server, "tools/call", {"name": "fan_out"}, env)
    assert first["resultType"] == "input_required" and list(first["inputRequests"]) == ["_ask1"]
    done = await call(
        server, "tools/call", {"name": "fan_out", "inputResponses": {"_ask1": accept(name="Ed")}}, env
    )
    assert done["content"][0]["text"] == "Ed"


@settings(max_examples=300, deadline=None)
@given(
    state=st.one_of(st.none(), st.text(max_size=40)),
    position=st.integers(min_value=0),
    flip=st.integers(1, 255),
)
def test_a_sealed_state_round_trips_and_any_changed_byte_is_refused(
    state: str | None, position: int, flip: int
) -> None:
    seal = StateSeal(b"0123456789abcdef")
    asked = {"_ask1": {"action": "accept"}}
    token = seal.seal("tools/call\nt", state, asked)
    assert seal.open("tools/call\nt", token) == (state, asked)
    raw = bytearray(token.encode())
    i = position % len(raw)
    raw[i] = (raw[i] + flip) % 256
    changed = raw.decode("latin-1")
    if changed != token:
        with pytest.raises(JsonRpcError) as info:
            seal.open("tools/call\nt", changed)
        assert info.value.code == -32602
