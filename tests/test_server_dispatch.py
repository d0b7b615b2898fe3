"""handle_request against a fake RequestEnv: what each MCP method answers, and how handlers fail."""

from __future__ import annotations

import base64
import enum
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any

import attrs
import pytest
import trio
import trio.testing
from _fake_env import FakeEnv, stateless_env
from mcpvisor.runtime.protocol import (
    CallToolResult,
    ImageContent,
    JsonRpcError,
    Request,
    TextContent,
    TextResourceContents,
)
from mcpvisor.runtime.server import (
    Audio,
    Completion,
    Context,
    CrashSession,
    Image,
    Server,
    ToolError,
    handle_request,
)


async def call(server: Server, method: str, params: dict[str, Any] | None = None, env: Any = None) -> Any:
    return await handle_request(server, Request(1, method, params), env or FakeEnv())


async def call_tool(server: Server, name: str, env: Any = None, **arguments: Any) -> Any:
    return await call(server, "tools/call", {"name": name, "arguments": arguments}, env)


async def error_of(server: Server, method: str, params: dict[str, Any] | None = None, env: Any = None) -> Any:
    with pytest.raises(JsonRpcError) as info:
        await call(server, method, params, env)
    return info.value


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Forecast:
    city: str
    unit: Unit
    highs: list[float]


# -- tools/list -----------------------------------------------------------------------------------------


async def test_tools_list_shows_schemas_from_hints_and_docstrings() -> None:
    server = Server("s")

    @server.tool(annotations={"readOnlyHint": True}, title="Weather")
    def forecast(city: Annotated[str, "where"], days: int = 3, unit: Unit = Unit.C) -> Forecast:
        """Forecast for a city."""
        return Forecast(city, unit, [1.0] * days)

    @server.tool
    def echo(text: str) -> str:
        return text

    tools = {t["name"]: t for t in (await call(server, "tools/list"))["tools"]}
    weather = tools["forecast"]
    assert weather["description"] == "Forecast for a city."
    assert weather["title"] == "Weather"
    assert weather["annotations"] == {"readOnlyHint": True}
    schema = weather["inputSchema"]
    assert schema["required"] == ["city"]
    assert schema["properties"]["city"] == {"type": "string", "description": "where"}
    assert schema["properties"]["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "default": "celsius",
    }
    out = weather["outputSchema"]
    assert out["type"] == "object" and out["required"] == ["city", "unit", "highs"]
    assert "outputSchema" not in tools["echo"] and "description" not in tools["echo"]


async def test_context_parameter_is_not_in_the_schema() -> None:
    server = Server("s")

    @server.tool
    async def who(ctx: Context, greeting: str = "hi") -> str:
        return f"{greeting} {ctx.session_id}"

    (tool,) = (await call(server, "tools/list"))["tools"]
    assert tool["inputSchema"]["properties"] == {"greeting": {"type": "string", "default": "hi"}}
    result = await call_tool(server, "who", greeting="yo")
    assert result["content"] == [{"type": "text", "text": "yo session-1"}]


def test_registration_errors_are_raised_where_the_function_is() -> None:
    server = Server("s")

    @server.tool
    def once() -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        server.tool(name="once")(lambda: None)
    with pytest.raises(TypeError, match="async def"):

        @server.tool
        def sync_with_context(ctx: Context) -> None: ...

    with pytest.raises(TypeError, match="JSON Schema"):

        @server.tool
        def bad(x: threading.Lock) -> None: ...

    with pytest.raises(TypeError, match="not async"):

        @server.prompt
        def sync_prompt_with_context(ctx: Context) -> str:
            return ""


def test_decorators_return_the_function() -> None:
    server = Server("s")

    def f(a: int) -> int:
        return a

    assert server.tool(f) is f
    assert server.prompt(name="p")(f) is f
    assert server.resource_template("x://{a}")(f) is f


async def test_explicit_output_schema_wins() -> None:
    server = Server("s")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}

    @server.tool(output_schema=schema)
    def n() -> Any:
        return {"n": 1}

    (tool,) = (await call(server, "tools/list"))["tools"]
    assert tool["outputSchema"] == schema
    assert (await call_tool(server, "n"))["structuredContent"] == {"n": 1}


# -- tools/call: arguments ------------------------------------------------------------------------------


def _adder() -> Server:
    server = Server("s")

    @server.tool
    def add(a: int, b: int = 1) -> int:
        return a + b

    return server


@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
async def test_bad_arguments_are_tool_errors_from_2025_11_25(version: str) -> None:
    env = FakeEnv(protocol_version=version)
    result = await call_tool(_adder(), "add", env, a="x")
    assert result["isError"] is True
    assert "argument 'a': expected integer, got 'x'" in result["content"][0]["text"]
    missing = await call(_adder(), "tools/call", {"name": "add"}, env)
    assert missing["isError"] and "'a'" in missing["content"][0]["text"]


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26", "2024-11-05"])
async def test_bad_arguments_are_protocol_errors_before_2025_11_25(version: str) -> None:
    error = await error_of(
        _adder(),
        "tools/call",
        {"name": "add", "arguments": {"a": 1, "c": 2}},
        FakeEnv(protocol_version=version),
    )
    assert error.code == -32602 and error.data == {"field": "c"}
    error = await error_of(
        _adder(), "tools/call", {"name": "add", "arguments": [1]}, FakeEnv(protocol_version=version)
    )
    assert error.code == -32602


async def test_unknown_tool_is_a_protocol_error_naming_it() -> None:
    error = await error_of(_adder(), "tools/call", {"name": "nope"})
    assert error.code == -32602 and "nope" in error.message and error.data == {"name": "nope"}
    assert (await error_of(_adder(), "tools/call", {})).code == -32602


# -- tools/call: sync and async, failures ---------------------------------------------------------------


async def test_sync_handlers_run_in_a_worker_thread_and_async_ones_in_trio() -> None:
    server = Server("s")
    seen: dict[str, threading.Thread] = {}

    @server.tool
    def sync() -> str:
        seen["sync"] = threading.current_thread()
        return "s"

    @server.tool
    async def asyn() -> str:
        seen["async"] = threading.current_thread()
        await trio.lowlevel.checkpoint()
        return "a"

    assert (await call_tool(server, "sync"))["content"][0]["text"] == "s"
    assert (await call_tool(server, "asyn"))["content"][0]["text"] == "a"
    assert seen["sync"] is not threading.main_thread()
    assert seen["async"] is threading.main_thread()


async def test_tool_error_is_a_result_the_model_sees() -> None:
    server = Server("s")

    @server.tool
    async def fail() -> str:
        raise ToolError("city not found: Atlantis")

    result = await call_tool(server, "fail")
    assert result == {"content": [{"type": "text", "text": "city not found: Atlantis"}], "isError": True}


@pytest.mark.parametrize("is_async", [False, True])
async def test_crashes_are_logged_and_answered_without_internals(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server("s")

    def boom() -> str:
        raise RuntimeError("secret path /etc/passwd")

    async def aboom() -> str:
        return boom()

    server.tool(name="boom")(aboom if is_async else boom)
    with caplog.at_level(logging.ERROR, logger="mcpvisor.runtime.server"):
        error = await error_of(server, "tools/call", {"name": "boom"})
    assert error.code == -32603 and error.message == "Internal error" and error.data is None
    (record,) = [r for r in caplog.records if r.name == "mcpvisor.runtime.server"]
    assert "boom" in record.getMessage() and record.exc_info is not None
    assert "secret" in str(record.exc_info[1])


async def test_json_rpc_errors_from_handlers_keep_their_code() -> None:
    server = Server("s")

    @server.tool
    async def picky() -> None:
        raise JsonRpcError(-32001, "custom", {"why": 1})

    error = await error_of(server, "tools/call", {"name": "picky"})
    assert (error.code, error.message, error.data) == (-32001, "custom", {"why": 1})


@pytest.mark.parametrize("is_async", [False, True])
async def test_crash_session_propagates_untouched(is_async: bool) -> None:
    server = Server("s")
    crash = CrashSession("on purpose")

    def sync_crash() -> None:
        raise crash

    async def async_crash() -> None:
        raise crash

    server.tool(name="crash")(async_crash if is_async else sync_crash)
    with pytest.raises(CrashSession) as info:
        await call_tool(server, "crash")
    assert info.value is crash


async def test_crash_session_inside_an_exception_group_still_crashes() -> None:
    server = Server("s")

    @server.tool
    async def nursery_crash() -> None:
        async with trio.open_nursery() as nursery:

            async def child() -> None:
                raise CrashSession("from a child task")

            nursery.start_soon(child)

    with pytest.raises(CrashSession, match="from a child task"):
        await call_tool(server, "nursery_crash")


async def test_cancellation_reaches_the_handler_and_propagates() -> None:
    server = Server("s")
    cleaned_up = trio.Event()

    @server.tool
    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned_up.set()

    with trio.move_on_after(0.01) as scope:
        await call_tool(server, "forever")
    assert scope.cancelled_caught and cleaned_up.is_set()


# -- tools/call: return values --------------------------------------------------------------------------


@attrs.frozen
class Point:
    x: int
    unit: Unit


CONVERSIONS: list[tuple[Callable[[], Any], dict[str, Any]]] = [
    (lambda: "hi", {"content": [{"type": "text", "text": "hi"}], "isError": False}),
    (lambda: None, {"content": [], "isError": False}),
    (lambda: TextContent("t"), {"content": [{"type": "text", "text": "t"}], "isError": False}),
    (
        lambda: [TextContent("a"), "b", Image(b"\x89PNG", mime_type="image/png")],
        {
            "content": [
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b"},
                {"type": "image", "data": base64.b64encode(b"\x89PNG").decode(), "mimeType": "image/png"},
            ],
            "isError": False,
        },
    ),
    (
        lambda: CallToolResult([TextContent("x")], is_error=True),
        {"content": [{"type": "text", "text": "x"}], "isError": True},
    ),
    (
        lambda: {"a": [1, 2]},
        {
            "content": [{"type": "text", "text": '{"a":[1,2]}'}],
            "structuredContent": {"a": [1, 2]},
            "isError": False,
        },
    ),
    (
        lambda: ["x", "y"],
        {
            "content": [{"type": "text", "text": '["x","y"]'}],
            "structuredContent": {"result": ["x", "y"]},
            "isError": False,
        },
    ),
    (
        lambda: False,
        {
            "content": [{"type": "text", "text": "false"}],
            "structuredContent": {"result": False},
            "isError": False,
        },
    ),
    (
        lambda: Point(3, Unit.F),
        {
            "content": [{"type": "text", "text": '{"x":3,"unit":"fahrenheit"}'}],
            "structuredContent": {"x": 3, "unit": "fahrenheit"},
            "isError": False,
        },
    ),
]


@pytest.mark.parametrize(("make", "expected"), CONVERSIONS)
async def test_return_values_become_results(make: Callable[[], Any], expected: dict[str, Any]) -> None:
    server = Server("s")
    server.tool(name="t")(lambda: make())
    assert await call_tool(server, "t") == expected


async def test_wrapping_follows_the_declared_output_schema() -> None:
    server = Server("s")

    @server.tool
    def maybe_map(empty: bool) -> dict[str, int] | None:
        return None if empty else {"a": 1}

    @server.tool
    def count() -> int:
        return 4

    tools = {t["name"]: t for t in (await call(server, "tools/list"))["tools"]}
    assert tools["count"]["outputSchema"]["properties"]["result"] == {"type": "integer"}
    assert (await call_tool(server, "count"))["structuredContent"] == {"result": 4}
    assert tools["maybe_map"]["outputSchema"]["required"] == ["result"]
    assert (await call_tool(server, "maybe_map", empty=False))["structuredContent"] == {"result": {"a": 1}}
    # With a schema advertised, None and strings are structured too: clients reject a result without it.
    assert (await call_tool(server, "maybe_map", empty=True))["structuredContent"] == {"result": None}

    @server.tool
    def label(n: int) -> str | int:
        return "many" if n > 2 else n

    assert await call_tool(server, "label", n=5) == {
        "content": [{"type": "text", "text": "many"}],
        "structuredContent": {"result": "many"},
        "isError": False,
    }


async def test_untyped_sequences_may_be_content_so_they_advertise_no_schema() -> None:
    server = Server("s")

    @server.tool
    def mixed() -> list[object]:
        return ["see:", Image(b"x", mime_type="image/png")]

    @server.tool
    def data() -> dict[str, Any]:
        return {"k": [1]}

    tools = {t["name"]: t for t in (await call(server, "tools/list"))["tools"]}
    assert "outputSchema" not in tools["mixed"] and tools["data"]["outputSchema"]["type"] == "object"
    assert [b["type"] for b in (await call_tool(server, "mixed"))["content"]] == ["text", "image"]


async def test_a_value_that_is_not_json_is_an_internal_error() -> None:
    server = Server("s")
    server.tool(name="t")(lambda: {"when": object()})
    assert (await error_of(server, "tools/call", {"name": "t"})).code == -32603


# -- resources ------------------------------------------------------------------------------------------


def _library() -> Server:
    server = Server("s")

    @server.resource("config://app", mime_type="application/toml", description="App config.")
    def config() -> str:
        return "debug = true"

    @server.resource("img://logo")
    async def logo(ctx: Context) -> bytes:
        assert ctx.session_id == "session-1"
        return b"\x00\x01\xff"

    @server.resource("data://json")
    def data() -> dict[str, int]:
        return {"n": 1}

    @server.resource_template("users://{user_id}/profile", mime_type="application/json")
    def profile(user_id: int) -> dict[str, Any]:
        """A user's profile."""
        return {"id": user_id, "kind": type(user_id).__name__}

    @server.resource_template("search://q{?text,limit}")
    def search(text: str = "", limit: int = 10) -> list[TextResourceContents]:
        return [TextResourceContents(f"search://q?text={text}", f"{text}:{limit}")]

    return server


async def test_resources_are_listed_with_their_metadata() -> None:
    listed = (await call(_library(), "resources/list"))["resources"]
    assert listed[0] == {
        "uri": "config://app",
        "name": "config",
        "description": "App config.",
        "mimeType": "application/toml",
    }
    assert [r["uri"] for r in listed] == ["config://app", "img://logo", "data://json"]
    templates = (await call(_library(), "resources/templates/list", {"cursor": "ignored"}))[
        "resourceTemplates"
    ]
    assert templates[0] == {
        "uriTemplate": "users://{user_id}/profile",
        "name": "profile",
        "description": "A user's profile.",
        "mimeType": "application/json",
    }


async def test_reading_text_binary_and_json_resources() -> None:
    server = _library()
    text = await call(server, "resources/read", {"uri": "config://app"})
    assert text == {
        "contents": [{"uri": "config://app", "text": "debug = true", "mimeType": "application/toml"}]
    }
    blob = (await call(server, "resources/read", {"uri": "img://logo"}))["contents"][0]
    assert (
        base64.b64decode(blob["blob"]) == b"\x00\x01\xff" and blob["mimeType"] == "application/octet-stream"
    )
    data = (await call(server, "resources/read", {"uri": "data://json"}))["contents"][0]
    assert data["text"] == '{"n": 1}' and data["mimeType"] == "application/json"


async def test_templates_bind_variables_converted_by_hints() -> None:
    server = _library()
    read = await call(server, "resources/read", {"uri": "users://42/profile"})
    assert read["contents"][0]["text"] == '{"id": 42, "kind": "int"}'
    query = await call(server, "resources/read", {"uri": "search://q?text=a%20b"})
    assert query["contents"][0]["text"] == "a b:10"
    error = await error_of(server, "resources/read", {"uri": "users://abc/profile"})
    assert error.code == -32602 and "user_id" in error.message


async def test_unknown_resource_is_32002_until_2026_and_32602_after() -> None:
    error = await error_of(_library(), "resources/read", {"uri": "nope://x"})
    assert error.code == -32002 and error.data == {"uri": "nope://x"}
    error = await error_of(_library(), "resources/read", {"uri": "nope://x"}, stateless_env())  # SEP-2164
    assert error.code == -32602 and error.data == {"uri": "nope://x"}


def test_template_parameters_must_match_its_variables() -> None:
    server = Server("s")
    with pytest.raises(TypeError, match="exactly the template's variables"):

        @server.resource_template("users://{id}")
        def wrong(name: str) -> str:
            return name

    with pytest.raises(ValueError, match="resource_template"):
        server.resource("users://{id}")(lambda id: id)


async def test_subscribe_and_unsubscribe_go_to_the_env() -> None:
    env = FakeEnv()
    server = _library()
    assert await call(server, "resources/subscribe", {"uri": "users://1/profile"}, env) == {}
    assert env.subscriptions == {"users://1/profile"}
    await call(server, "resources/unsubscribe", {"uri": "users://1/profile"}, env)
    assert env.subscriptions == set()
    assert (await error_of(server, "resources/subscribe", {"uri": "nope://"}, env)).code == -32002


# -- prompts --------------------------------------------------------------------------------------------


def _prompts() -> Server:
    server = Server("s")

    @server.prompt(title="Review")
    def review(code: Annotated[str, "the code"], strict: bool = False) -> str:
        """Review some code."""
        return f"Review{' strictly' if strict else ''}: {code}"

    @server.prompt
    async def dialogue(ctx: Context, turns: int) -> list[Any]:
        return [("user", "hi"), ("assistant", TextContent(f"{turns} turns, {ctx.protocol_version}"))] * turns

    return server


async def test_prompts_list_arguments_from_the_signature() -> None:
    prompts = {p["name"]: p for p in (await call(_prompts(), "prompts/list"))["prompts"]}
    assert prompts["review"] == {
        "name": "review",
        "title": "Review",
        "description": "Review some code.",
        "arguments": [
            {"name": "code", "description": "the code", "required": True},
            {"name": "strict", "required": False},
        ],
    }
    assert prompts["dialogue"]["arguments"] == [{"name": "turns", "required": True}]


async def test_prompts_get_converts_arguments_and_messages() -> None:
    server = _prompts()
    got = await call(
        server, "prompts/get", {"name": "review", "arguments": {"code": "x=1", "strict": "true"}}
    )
    assert got == {
        "description": "Review some code.",
        "messages": [{"role": "user", "content": {"type": "text", "text": "Review strictly: x=1"}}],
    }
    talk = await call(server, "prompts/get", {"name": "dialogue", "arguments": {"turns": "2"}})
    assert [m["role"] for m in talk["messages"]] == ["user", "assistant", "user", "assistant"]
    assert talk["messages"][1]["content"]["text"] == "2 turns, 2025-11-25"


async def test_prompt_argument_errors() -> None:
    server = _prompts()
    missing = await error_of(server, "prompts/get", {"name": "review"})
    assert missing.code == -32602 and missing.data == {"field": "code"}
    bad = await error_of(server, "prompts/get", {"name": "dialogue", "arguments": {"turns": "many"}})
    assert bad.code == -32602 and "turns" in bad.message
    unknown = await error_of(server, "prompts/get", {"name": "nope"})
    assert unknown.code == -32602 and "nope" in unknown.message


# -- completion -----------------------------------------------------------------------------------------


def _completing() -> Server:
    server = _prompts()
    languages = ["python", "perl", "php", "rust"]

    @server.completion("ref/prompt", "review")
    def complete_review(argument: str, value: str) -> list[str]:
        return [lang for lang in languages if lang.startswith(value)] if argument == "code" else []

    @server.resource_template("repo://{owner}/{name}")
    def repo(owner: str, name: str) -> str:
        return f"{owner}/{name}"

    @server.completion("ref/resource", "repo://{owner}/{name}")
    async def complete_repo(ctx: Context, value: str, arguments: dict[str, str]) -> Completion:
        names = [f"{arguments.get('owner', '?')}-{i}" for i in range(150)]
        return Completion(names)

    return server


async def test_completion_for_prompt_arguments_and_template_variables() -> None:
    server = _completing()
    got = await call(
        server,
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "code", "value": "p"}},
    )
    assert got == {"completion": {"values": ["python", "perl", "php"]}}
    many = await call(
        server,
        "completion/complete",
        {
            "ref": {"type": "ref/resource", "uri": "repo://{owner}/{name}"},
            "argument": {"name": "name", "value": ""},
            "context": {"arguments": {"owner": "trio"}},
        },
    )
    assert len(many["completion"]["values"]) == 100 and many["completion"]["values"][0] == "trio-0"
    assert many["completion"]["total"] == 150 and many["completion"]["hasMore"] is True
    assert server.capabilities().completions == {}


async def test_completion_without_a_completer_and_for_unknown_refs() -> None:
    server = _completing()
    empty = await call(
        server,
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "dialogue"}, "argument": {"name": "turns", "value": ""}},
    )
    assert empty == {"completion": {"values": []}}
    unknown = await error_of(
        server,
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": ""}},
    )
    assert unknown.code == -32602
    assert (
        await error_of(server, "completion/complete", {"ref": {"type": "ref/x"}, "argument": {}})
    ).code == -32602
    with pytest.raises(TypeError, match="may declare only"):
        server.completion("ref/prompt", "dialogue")(lambda prefix: [])


# -- logging/setLevel, ping, discover, unknown methods --------------------------------------------------


async def test_set_level_goes_to_the_env_and_rejects_bad_levels() -> None:
    env = FakeEnv()
    assert await call(Server("s"), "logging/setLevel", {"level": "warning"}, env) == {}
    assert env.level_set == ["warning"]
    assert (await error_of(Server("s"), "logging/setLevel", {"level": "loud"}, env)).code == -32602


async def test_ping_and_unknown_methods() -> None:
    assert await call(Server("s"), "ping") == {}
    assert (await error_of(Server("s"), "tools/frobnicate")).code == -32601
    assert (await error_of(Server("s"), "initialize", {})).code == -32601
    # Methods of the other era are unknown too.
    assert (await error_of(Server("s"), "ping", env=stateless_env())).code == -32601
    assert (await error_of(Server("s"), "server/discover")).code == -32601


async def test_discover_describes_the_server() -> None:
    server = Server("s", "2.0", instructions="Be nice.")

    @server.tool
    def t() -> None: ...

    found = await call(server, "server/discover", {}, stateless_env())
    assert found["supportedVersions"] == ["2026-07-28"]  # handshake revisions are found via initialize
    # list_changed reaches a stateless client on a subscriptions/listen stream
    assert found["capabilities"] == {"tools": {"listChanged": True}, "logging": {}}
    assert found["instructions"] == "Be nice."


def test_initialize_result_derives_capabilities_from_registrations() -> None:
    server = Server("demo", "1.2.3", "Use the tools.", title="Demo", website_url="https://example.com")
    assert server.initialize_result("2025-06-18") == {
        "protocolVersion": "2025-06-18",
        "capabilities": {"logging": {}},
        "serverInfo": {
            "name": "demo",
            "version": "1.2.3",
            "title": "Demo",
            "websiteUrl": "https://example.com",
        },
        "instructions": "Use the tools.",
    }
    server.resource_template("a://{x}")(lambda x: x)
    server.prompt(name="p")(lambda: "")
    caps = server.initialize_result("2025-11-25")["capabilities"]
    assert caps["resources"] == {"subscribe": True, "listChanged": True}
    assert caps["prompts"] == {"listChanged": True} and "tools" not in caps


def test_list_changed_listeners_hear_registrations_and_removals() -> None:
    server = Server("s")
    heard: list[str] = []
    stop = server.on_list_changed(heard.append)
    server.tool(name="t")(lambda: None)
    server.resource("a://b")(lambda: "")
    server.prompt(name="p")(lambda: "")
    server.remove_tool("t")
    stop()
    server.remove_prompt("p")
    assert heard == ["tools", "resources", "prompts", "tools"]
    with pytest.raises(KeyError):
        server.remove_tool("t")


async def test_a_handler_can_image_from_a_path(tmp_path: Any) -> None:
    path = tmp_path / "dot.png"
    path.write_bytes(b"png!")
    server = Server("s")
    server.tool(name="pic")(lambda: Image(path=path))
    (block,) = (await call_tool(server, "pic"))["content"]
    assert block == {"type": "image", "data": base64.b64encode(b"png!").decode(), "mimeType": "image/png"}
    assert isinstance(Image(b"x", mime_type="image/gif").to_content(), ImageContent)
    with pytest.raises(TypeError):
        Image(b"x")


def test_tool_names_outside_the_spec_alphabet_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    server = Server("s")
    with caplog.at_level(logging.WARNING, logger="mcpvisor.runtime.server"):
        server.tool(name="fine.name-1_x")(lambda: None)
        assert caplog.records == []
        server.tool(name="has space")(lambda: None)
    assert "'has space'" in caplog.records[0].getMessage()


async def test_lists_are_cached_until_something_is_registered_or_removed() -> None:
    server = Server("s")
    server.tool(name="a")(lambda: None)
    first = await call(server, "tools/list")
    first["resultType"] = "complete"  # the runtime adds keys to what it gets back
    assert [t["name"] for t in (await call(server, "tools/list"))["tools"]] == ["a"]
    assert "resultType" not in await call(server, "tools/list")
    server.tool(name="b")(lambda: None)
    assert [t["name"] for t in (await call(server, "tools/list"))["tools"]] == ["a", "b"]
    server.remove_tool("a")
    assert [t["name"] for t in (await call(server, "tools/list"))["tools"]] == ["b"]
    server.resource("r://1")(lambda: "")
    server.remove_resource("r://1")
    assert (await call(server, "resources/list"))["resources"] == []


async def test_templates_and_resources_get_a_context_and_tool_errors_become_32603() -> None:
    server = Server("s")

    @server.resource_template("notes://{name}")
    async def note(ctx: Context, name: str) -> str:
        return f"{name} for {ctx.session_id}"

    @server.resource("broken://r")
    async def broken() -> str:
        raise ToolError("disk is gone")

    read = await call(server, "resources/read", {"uri": "notes://todo"}, FakeEnv(session_id="abc"))
    assert read["contents"][0]["text"] == "todo for abc"
    error = await error_of(server, "resources/read", {"uri": "broken://r"})
    assert error.code == -32603 and error.message == "disk is gone"


async def test_audio_content_from_bytes() -> None:
    server = Server("s")
    server.tool(name="beep")(lambda: Audio(b"RIFF", mime_type="audio/wav"))
    (block,) = (await call_tool(server, "beep"))["content"]
    assert block == {"type": "audio", "data": base64.b64encode(b"RIFF").decode(), "mimeType": "audio/wav"}


async def test_structured_values_must_match_the_advertised_output_schema(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server("s")

    @server.tool
    def total() -> int:
        return [1, 2]  # type: ignore[return-value]

    @server.tool
    def point() -> Point:
        return {"x": "three", "unit": "celsius"}  # type: ignore[return-value]

    with caplog.at_level(logging.ERROR, logger="mcpvisor.runtime.server"):
        assert (await error_of(server, "tools/call", {"name": "total"})).code == -32603
        assert (await error_of(server, "tools/call", {"name": "point"})).code == -32603
    problems = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert "breaks its output schema at the value: expected integer" in problems[0]
    assert "['x']: expected integer, got 'three'" in problems[1]


async def test_cancelling_a_stuck_sync_tool_does_not_wait_for_its_thread() -> None:
    server = Server("s")
    release, finished = threading.Event(), threading.Event()

    @server.tool
    def stuck() -> str:
        release.wait(10)
        finished.set()
        return "late"

    with trio.move_on_after(0.05) as scope:
        await call_tool(server, "stuck")
    assert scope.cancelled_caught and not finished.is_set()
    release.set()
    assert await trio.to_thread.run_sync(finished.wait, 10)


async def test_sync_tools_share_trios_default_thread_limiter_and_a_wait_for_one_is_cancellable() -> None:
    # Sync tools take trio's default thread limiter (its cap, as configured) without its extra
    # checkpoint: the cap must still hold, and a call waiting for a free thread must still cancel.
    server = Server("s")
    limiter = trio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = 2
    release = threading.Event()
    running: list[int] = []
    peak: list[int] = []
    lock = threading.Lock()

    @server.tool
    def hold() -> str:
        with lock:
            running.append(1)
            peak.append(len(running))
        release.wait(10)
        with lock:
            running.pop()
        return "ok"

    answers: list[str] = []

    async def one() -> None:
        answers.append((await call_tool(server, "hold"))["content"][0]["text"])

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.borrowed_tokens == 2 and limiter.statistics().tasks_waiting == 2
        with trio.move_on_after(0.01) as scope:
            await call_tool(server, "hold")  # waits for a thread: cancellable while it waits
        assert scope.cancelled_caught
        release.set()
    assert answers == ["ok"] * 4 and max(peak) == 2 and limiter.borrowed_tokens == 0


async def test_a_sync_tool_may_call_back_into_trio() -> None:
    server = Server("s")

    @server.tool
    def back() -> str:
        return trio.from_thread.run_sync(lambda: "from trio")

    assert (await call_tool(server, "back"))["content"][0]["text"] == "from trio"


async def test_a_plain_callable_returning_a_coroutine_is_awaited() -> None:
    server = Server("s")

    async def later(n: int) -> int:
        await trio.lowlevel.checkpoint()
        return n * 2

    server.tool(name="twice")(lambda n: later(n))
    # (a lambda has no hints, so `n` takes any JSON value)
    assert (await call_tool(server, "twice", n=4))["structuredContent"] == {"result": 8}


# -- hand-written input schemas (input_schema=) ------------------------------------------------------

SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {"$anchor": "addressDef", "type": "object", "properties": {"city": {"type": "string"}}}
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string", "x-mcp-header": "Phone"},
        "email": {"type": "string"},
        "age": {"type": ["integer", "null"]},
    },
    "required": ["name"],
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


async def test_a_hand_written_input_schema_is_advertised_verbatim_and_binds_keywords() -> None:
    server = Server("s")
    seen: list[dict[str, Any]] = []

    @server.tool(input_schema=SCHEMA_2020_12)
    def contact(**arguments: Any) -> str:
        seen.append(arguments)
        return "ok"

    listed = (await call(server, "tools/list"))["tools"][0]
    assert listed["inputSchema"] == SCHEMA_2020_12
    SCHEMA_2020_12["properties"]["name"]["type"] = "integer"  # a later change by the caller...
    try:
        assert (await call(server, "tools/list"))["tools"][0]["inputSchema"]["properties"]["name"] == {
            "type": "string"
        }  # ...does not leak into the registered copy
    finally:
        SCHEMA_2020_12["properties"]["name"]["type"] = "string"

    arguments = {"name": "Ada", "phone": "1", "age": None}
    result = await call(server, "tools/call", {"name": "contact", "arguments": arguments})
    assert result["content"][0]["text"] == "ok"
    assert seen == [{"name": "Ada", "phone": "1", "age": None}]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "argument 'name': required argument is missing"),
        ({"name": 3}, "argument 'name': expected string, got integer"),
        ({"name": "a", "age": 1.5}, "argument 'age': expected integer or null, got number"),
        ({"name": "a", "fax": "2"}, "argument 'fax': unexpected argument"),
    ],
)
async def test_a_hand_written_schema_checks_required_names_plain_types_and_closed_objects(
    arguments: dict[str, Any], message: str
) -> None:
    server = Server("s")
    server.tool(name="contact", input_schema=SCHEMA_2020_12)(lambda **kw: "ok")
    result = await call(server, "tools/call", {"name": "contact", "arguments": arguments})
    assert result["isError"] and message in result["content"][0]["text"]
    old = await error_of(
        server,
        "tools/call",
        {"name": "contact", "arguments": arguments},
        FakeEnv(protocol_version="2025-06-18"),
    )
    assert old.code == -32602 and message in old.message


async def test_a_hand_written_schema_fills_named_parameters_and_the_context() -> None:
    server = Server("s")
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}

    @server.tool(input_schema=schema)
    async def forecast(ctx: Context, city: str, days: int = 3) -> str:
        assert isinstance(ctx, Context)
        return f"{city}:{days}"

    assert (await call_tool(server, "forecast", city="Oslo"))["content"][0]["text"] == "Oslo:3"
    missing = await call_tool(server, "forecast", days=2)  # the schema allows it, the function cannot
    assert (
        missing["isError"]
        and "argument 'city': required argument is missing" in missing["content"][0]["text"]
    )
    extra = await call_tool(server, "forecast", city="Oslo", unit="C")
    assert extra["isError"] and "argument 'unit': unexpected argument" in extra["content"][0]["text"]


def test_a_hand_written_schema_must_describe_an_object() -> None:
    server = Server("s")
    with pytest.raises(ValueError, match='"type": "object"'):
        server.tool(name="bad", input_schema={"type": "string"})(lambda **kw: None)
    with pytest.raises(TypeError, match="keyword arguments only"):
        server.tool(name="pos", input_schema={"type": "object"})(lambda x, /: None)


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({"r": {"type": "string", "x-mcp-header": "Bad Name"}}, "HTTP token"),
        ({"r": {"type": "object", "x-mcp-header": "Region"}}, "string, integer, number or boolean"),
        (
            {
                "a": {"type": "string", "x-mcp-header": "Region"},
                "b": {"type": "string", "x-mcp-header": "region"},
            },
            "both use the header",
        ),
    ],
)
def test_x_mcp_header_annotations_are_checked_at_registration(
    properties: dict[str, Any], problem: str
) -> None:
    server = Server("s")
    with pytest.raises(ValueError, match=problem):
        server.tool(name="t", input_schema={"type": "object", "properties": properties})(lambda **kw: None)
    server.tool(
        name="ok",
        input_schema={"type": "object", "properties": {"r": {"type": "string", "x-mcp-header": "R"}}},
    )(lambda **kw: None)
    assert server.param_headers("ok") == {"r": "mcp-param-r"} and server.param_headers("nope") == {}
