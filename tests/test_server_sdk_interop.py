"""The official ``mcp`` SDK client reads every wire form the Server API produces (over stdio)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import PromptReference

TESTS = Path(__file__).resolve().parent


async def test_the_sdk_client_understands_tools_resources_prompts_and_completion(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpvisor", "run", str(TESTS / "_interop_app.py:server"), "--transport", "stdio"],
        cwd=str(TESTS.parent),
    )
    errlog = (tmp_path / "stderr.log").open("w+")
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.instructions == "For the SDK interop test."
        caps = init.capabilities
        assert (
            caps.tools and caps.resources and caps.resources.subscribe and caps.prompts and caps.completions
        )

        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["forecast"].annotations and tools["forecast"].annotations.read_only_hint is True
        assert tools["forecast"].output_schema and tools["forecast"].output_schema["type"] == "object"
        # The SDK validates structuredContent against outputSchema: both the object and the wrapped form.
        weather = await session.call_tool("forecast", {"city": "Oslo", "unit": "fahrenheit"})
        assert not weather.is_error
        assert weather.structured_content == {"city": "Oslo", "unit": "fahrenheit", "highs": [20.5, 20.5]}
        total = await session.call_tool("total", {"numbers": [1, 2, 3]})
        assert total.structured_content == {"result": 6}
        failed = await session.call_tool("forecast", {"city": "Atlantis"})
        assert failed.is_error and failed.content[0].text == "unknown city: Atlantis"  # type: ignore[union-attr]
        invalid = await session.call_tool("total", {"numbers": ["x"]})
        assert invalid.is_error and "numbers[0]" in invalid.content[0].text  # type: ignore[union-attr]
        picture = await session.call_tool("picture", {})
        assert [block.type for block in picture.content] == ["text", "image"]

        resources = (await session.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["config://app"]
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["blob://{size}"]
        text = (await session.read_resource("config://app")).contents[0]
        assert text.text == "debug = true"  # type: ignore[union-attr]
        blob = (await session.read_resource("blob://4")).contents[0]
        assert base64.b64decode(blob.blob) == bytes([0, 1, 2, 3])  # type: ignore[union-attr]

        (prompt,) = (await session.list_prompts()).prompts
        assert prompt.title == "Review" and [(a.name, a.required) for a in prompt.arguments or []] == [
            ("code", True),
            ("strict", False),
        ]
        got = await session.get_prompt("review", {"code": "x", "strict": "true"})
        assert [m.role for m in got.messages] == ["user", "assistant"]
        assert got.messages[0].content.text == "review strictly: x"  # type: ignore[union-attr]

        done = await session.complete(
            PromptReference(type="ref/prompt", name="review"), {"name": "code", "value": "v"}
        )
        assert done.completion.values == ["v0", "v1", "v2"]
        assert done.completion.total == 10 and done.completion.has_more is True
