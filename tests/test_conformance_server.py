"""examples/conformance_server.py answers what the conformance scenarios check, without Node.

The suite itself runs in ``.ci/conformance``; this keeps the ordinary test run from missing an example
that no longer imports or no longer returns what a scenario looks for (names, content types, progress,
logs, client requests), through the real runtime and its in-memory client.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.transports.memory import open_memory_client

from mcpvisor import start_server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "conformance_server.py"
HANDSHAKE = "2025-11-25"
STATELESS = "2026-07-28"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_server_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _client_answers(method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    if method == "sampling/createMessage":
        asked = params["messages"][0]["content"]["text"]
        return {"role": "assistant", "content": {"type": "text", "text": f"echo {asked}"}, "model": "m"}
    if method == "elicitation/create":
        return {"action": "accept", "content": {"username": "ada", "email": "ada@example.org"}}
    raise JsonRpcError(-32601, method)


@pytest.mark.parametrize("version", [HANDSHAKE, STATELESS])
async def test_listed_names_are_the_ones_the_scenarios_call(example: ModuleType, version: str) -> None:
    async with (
        start_server(example.server) as running,
        open_memory_client(running, protocol_version=version) as client,
    ):
        tools = {t["name"]: t for t in (await client.request("tools/list"))["tools"]}
        resources = {r["uri"] for r in (await client.request("resources/list"))["resources"]}
        templates = (await client.request("resources/templates/list"))["resourceTemplates"]
        prompts = {p["name"] for p in (await client.request("prompts/list"))["prompts"]}
    assert {
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_tool_with_logging",
        "test_error_handling",
        "test_tool_with_progress",
        "test_sampling",
        "test_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
    } <= set(tools)
    # tools-list: every tool has a description; content-returning tools advertise no output schema
    # (a client would then demand structuredContent).
    assert all(t.get("description") for t in tools.values())
    assert "outputSchema" not in tools["test_multiple_content_types"]
    assert tools["test_sampling"]["inputSchema"]["required"] == ["prompt"]
    # Hand-written schemas travel verbatim: the 2020-12 keywords and SEP-2243's header annotation.
    assert tools["json_schema_2020_12_tool"]["inputSchema"] == example.JSON_SCHEMA_2020_12
    assert tools["test_custom_header"]["inputSchema"]["properties"]["region"]["x-mcp-header"] == "Region"
    assert resources == {"test://static-text", "test://static-binary", "test://watched-resource"}
    assert [t["uriTemplate"] for t in templates] == ["test://template/{id}/data"]
    assert {
        "test_simple_prompt",
        "test_prompt_with_arguments",
        "test_prompt_with_embedded_resource",
        "test_prompt_with_image",
    } <= prompts


async def test_content_tools_resources_and_prompts(example: ModuleType) -> None:
    async with start_server(example.server) as running, open_memory_client(running) as client:
        image = (await client.call_tool("test_image_content"))["content"][0]
        audio = (await client.call_tool("test_audio_content"))["content"][0]
        mixed = (await client.call_tool("test_multiple_content_types"))["content"]
        error = await client.call_tool("test_error_handling")
        binary = (await client.request("resources/read", {"uri": "test://static-binary"}))["contents"][0]
        template = await client.request("resources/read", {"uri": "test://template/123/data"})
        prompt = await client.request(
            "prompts/get", {"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}
        )
        completion = await client.request(
            "completion/complete",
            {
                "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
                "argument": {"name": "arg1", "value": "par"},
            },
        )
    assert image["mimeType"] == "image/png"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert audio["mimeType"] == "audio/wav"
    assert base64.b64decode(audio["data"])[:4] == b"RIFF"
    assert [block["type"] for block in mixed] == ["text", "image", "resource"]
    assert error["isError"] is True
    assert error["content"][0]["text"] == "This tool intentionally returns an error for testing"
    assert binary["blob"] == image["data"]
    contents = template["contents"][0]
    assert contents["mimeType"] == "application/json"
    assert json.loads(contents["text"]) == {"id": "123", "templateTest": True, "data": "Data for ID: 123"}
    assert prompt["messages"][0]["content"]["text"] == "Prompt with arguments: arg1='a', arg2='b'"
    assert completion["completion"]["values"] == ["paris", "park", "party"]


async def test_progress_logs_and_client_requests(example: ModuleType) -> None:
    capabilities: dict[str, Any] = {"sampling": {}, "elicitation": {}}
    async with (
        start_server(example.server) as running,
        open_memory_client(running, capabilities=capabilities, on_request=_client_answers) as client,
    ):
        await client.request("logging/setLevel", {"level": "debug"})
        await client.call_tool("test_tool_with_progress", progress_token="p-1")
        progress = [n.params or {} for n in client.notifications if n.method == "notifications/progress"]
        await client.call_tool("test_tool_with_logging")
        logs = [n.params or {} for n in client.notifications if n.method == "notifications/message"]
        sampled = await client.call_tool("test_sampling", {"prompt": "hello"})
        elicited = await client.call_tool("test_elicitation", {"message": "who?"})
    assert [p["progress"] for p in progress] == [0, 50, 100]
    assert {p["progressToken"] for p in progress} == {"p-1"}
    assert [log["data"] for log in logs] == [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]
    assert sampled["content"][0]["text"] == "LLM response: echo hello"
    assert elicited["content"][0]["text"].startswith("User response: action=accept")


async def test_missing_capability_is_refused(example: ModuleType) -> None:
    async with (
        start_server(example.server) as running,
        open_memory_client(running, protocol_version=STATELESS) as client,
    ):
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("test_missing_capability")
    assert info.value.code == -32021
    assert info.value.data == {"requiredCapabilities": {"sampling": {}}}


async def test_input_required_rounds(example: ModuleType) -> None:
    """SEP-2322: the first call asks, the retry with the answers and the echoed state completes."""
    async with (
        start_server(example.server) as running,
        open_memory_client(running, protocol_version=STATELESS, capabilities={"elicitation": {}}) as client,
    ):
        first = await client.call_tool("test_input_required_result_request_state")
        answer = {"confirm": {"action": "accept", "content": {"ok": True}}}
        retry = {
            "name": "test_input_required_result_request_state",
            "arguments": {},
            "inputResponses": answer,
            "requestState": first["requestState"],
        }
        done = await client.request("tools/call", retry)
        with pytest.raises(JsonRpcError) as tampered:
            await client.request("tools/call", {**retry, "requestState": first["requestState"] + "x"})
        wrong_key = await client.request(
            "tools/call",
            {"name": "test_input_required_result_elicitation", "arguments": {}, "inputResponses": answer},
        )
    assert first["resultType"] == "input_required"
    assert first["inputRequests"]["confirm"]["method"] == "elicitation/create"
    assert "state-ok" in done["content"][0]["text"]
    assert tampered.value.code == -32602
    assert wrong_key["resultType"] == "input_required"  # asked again, not refused
    assert list(wrong_key["inputRequests"]) == ["user_name"]
