"""MCP records: exact camelCase wire forms, and wire -> record -> wire round trips."""

from __future__ import annotations

from typing import Any

import cattrs
import pytest
from mcpvisor.runtime.protocol import (
    Annotations,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    CancelledNotificationParams,
    ClientCapabilities,
    DiscoverResult,
    EmbeddedResource,
    GetPromptResult,
    Icon,
    ImageContent,
    Implementation,
    InitializeParams,
    InitializeResult,
    ListToolsResult,
    LoggingMessageNotificationParams,
    ProgressNotificationParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    PromptsCapability,
    ReadResourceResult,
    Resource,
    ResourceLink,
    ResourcesCapability,
    ResourceTemplate,
    RootsCapability,
    ServerCapabilities,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
    ToolsCapability,
    from_wire,
    to_wire,
)

CASES: list[tuple[Any, dict[str, Any]]] = [
    (
        Implementation(
            "srv", "1.2", title="Server", website_url="https://x", icons=[Icon("https://i", sizes=["48x48"])]
        ),
        {
            "name": "srv",
            "version": "1.2",
            "title": "Server",
            "websiteUrl": "https://x",
            "icons": [{"src": "https://i", "sizes": ["48x48"]}],
        },
    ),
    (
        ServerCapabilities(
            tools=ToolsCapability(list_changed=True),
            resources=ResourcesCapability(subscribe=True, list_changed=False),
            prompts=PromptsCapability(),
            logging={},
            completions={},
        ),
        {
            "tools": {"listChanged": True},
            "resources": {"subscribe": True, "listChanged": False},
            "prompts": {},
            "logging": {},
            "completions": {},
        },
    ),
    (
        ClientCapabilities(roots=RootsCapability(list_changed=True), sampling={}, elicitation={"form": {}}),
        {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {"form": {}}},
    ),
    (
        Tool(
            "add",
            {"type": "object", "properties": {}},
            title="Add",
            description="adds",
            output_schema={"type": "object"},
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
            meta={"k": 1},
        ),
        {
            "name": "add",
            "inputSchema": {"type": "object", "properties": {}},
            "title": "Add",
            "description": "adds",
            "outputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": True, "openWorldHint": False},
            "_meta": {"k": 1},
        },
    ),
    (
        CallToolResult(
            [
                TextContent("hi", annotations=Annotations(audience=["user"], priority=0.5)),
                ImageContent("aW1n", "image/png"),
                AudioContent("YXVk", "audio/wav"),
                ResourceLink("file:///a", "a", mime_type="text/plain", size=3),
                EmbeddedResource(TextResourceContents("file:///b", "body", mime_type="text/plain")),
                EmbeddedResource(BlobResourceContents("file:///c", "AAEC")),
            ],
            structured_content={"sum": 3},
            is_error=False,
        ),
        {
            "content": [
                {"type": "text", "text": "hi", "annotations": {"audience": ["user"], "priority": 0.5}},
                {"type": "image", "data": "aW1n", "mimeType": "image/png"},
                {"type": "audio", "data": "YXVk", "mimeType": "audio/wav"},
                {
                    "type": "resource_link",
                    "uri": "file:///a",
                    "name": "a",
                    "mimeType": "text/plain",
                    "size": 3,
                },
                {
                    "type": "resource",
                    "resource": {"uri": "file:///b", "text": "body", "mimeType": "text/plain"},
                },
                {"type": "resource", "resource": {"uri": "file:///c", "blob": "AAEC"}},
            ],
            "structuredContent": {"sum": 3},
            "isError": False,
        },
    ),
    (
        CallToolResult([TextContent("boom")], is_error=True),
        {"content": [{"type": "text", "text": "boom"}], "isError": True},
    ),
    (
        ListToolsResult([Tool("t", {"type": "object"})], next_cursor="n"),
        {"tools": [{"name": "t", "inputSchema": {"type": "object"}}], "nextCursor": "n"},
    ),
    (
        Resource("mem://a", "a", title="A", mime_type="text/plain", size=10),
        {"uri": "mem://a", "name": "a", "title": "A", "mimeType": "text/plain", "size": 10},
    ),
    (
        ResourceTemplate("users://{id}", "user", description="a user"),
        {"uriTemplate": "users://{id}", "name": "user", "description": "a user"},
    ),
    (
        ReadResourceResult(
            [TextResourceContents("mem://a", "x"), BlobResourceContents("mem://b", "AA==", "a/b")]
        ),
        {
            "contents": [
                {"uri": "mem://a", "text": "x"},
                {"uri": "mem://b", "blob": "AA==", "mimeType": "a/b"},
            ]
        },
    ),
    (
        Prompt("greet", description="d", arguments=[PromptArgument("name", required=True)]),
        {"name": "greet", "description": "d", "arguments": [{"name": "name", "required": True}]},
    ),
    (
        GetPromptResult([PromptMessage("user", TextContent("hello"))], description="d"),
        {"messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}], "description": "d"},
    ),
    (
        ProgressNotificationParams("tok", 0.5, total=1.0, message="half"),
        {"progressToken": "tok", "progress": 0.5, "total": 1.0, "message": "half"},
    ),
    (
        LoggingMessageNotificationParams("warning", {"x": 1}, logger="app"),
        {"level": "warning", "data": {"x": 1}, "logger": "app"},
    ),
    (CancelledNotificationParams(7, "user"), {"requestId": 7, "reason": "user"}),
    (
        InitializeParams("2025-11-25", ClientCapabilities(), Implementation("c", "1")),
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
    ),
    (
        InitializeResult(
            "2025-11-25", ServerCapabilities(tools=ToolsCapability()), Implementation("s", "2"), "use me"
        ),
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "s", "version": "2"},
            "instructions": "use me",
        },
    ),
    (
        DiscoverResult(
            ["2026-07-28", "2025-11-25"], ServerCapabilities(tools=ToolsCapability()), instructions="i"
        ),
        {
            "supportedVersions": ["2026-07-28", "2025-11-25"],
            "capabilities": {"tools": {}},
            "instructions": "i",
            "ttlMs": 0,
            "cacheScope": "private",
            "resultType": "complete",
        },
    ),
]


@pytest.mark.parametrize(("record", "wire"), CASES, ids=[type(r).__name__ for r, _ in CASES])
def test_exact_wire_form(record: Any, wire: dict[str, Any]) -> None:
    assert to_wire(record) == wire


@pytest.mark.parametrize(("record", "wire"), CASES, ids=[type(r).__name__ for r, _ in CASES])
def test_round_trip(record: Any, wire: dict[str, Any]) -> None:
    parsed = from_wire(wire, type(record))
    assert parsed == record
    assert to_wire(parsed) == wire


def test_records_are_frozen_and_sequences_become_tuples() -> None:
    result = CallToolResult([TextContent("a")])
    assert result.content == (TextContent("a"),)
    with pytest.raises(AttributeError):
        result.is_error = True  # type: ignore[misc]


def test_unknown_keys_from_newer_peers_are_ignored() -> None:
    parsed = from_wire({"name": "c", "version": "1", "somethingNew": 1}, Implementation)
    assert parsed == Implementation("c", "1")


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        ({"name": 5, "version": "1"}, Implementation),  # no str(5) coercion
        ({"name": "c"}, Implementation),
        ({"roots": "yes"}, ClientCapabilities),
        ("not an object", ClientCapabilities),
        ({"content": [{"type": "video", "data": "x"}]}, CallToolResult),
        ({"content": [{"type": "text"}]}, CallToolResult),
        ({"content": [{"type": ["text"]}]}, CallToolResult),
        ({"level": "loud", "data": 1}, LoggingMessageNotificationParams),
        ({"progressToken": 1.5, "progress": 1}, ProgressNotificationParams),
        ({"progressToken": "t", "progress": True}, ProgressNotificationParams),
    ],
)
def test_wrong_shapes_are_rejected(data: Any, cls: type[Any]) -> None:
    with pytest.raises((cattrs.BaseValidationError, TypeError, ValueError)):
        from_wire(data, cls)


def test_int_progress_structures_as_float() -> None:
    parsed = from_wire({"progressToken": 3, "progress": 1}, ProgressNotificationParams)
    assert parsed == ProgressNotificationParams(3, 1.0)
    assert isinstance(parsed.progress, float)
