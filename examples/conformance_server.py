"""The server the official MCP conformance suite tests (``.ci/conformance``; docs/conformance.md).

It is an ordinary mcpvisor server written with the public API only, so what the suite measures is what
a user's server gets. Each tool, resource and prompt carries the name a suite scenario calls, and returns
what that scenario checks for; the scenario is named next to it.

    python examples/conformance_server.py --port 3001           # serves http://127.0.0.1:3001/mcp
    mcpvisor run examples/conformance_server.py:server --transport http --port 3001
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import struct
import wave
import zlib
from typing import Annotated, Any

import trio

from mcpvisor import (
    Audio,
    Context,
    EmbeddedResource,
    Image,
    ImageContent,
    InputRequired,
    PromptMessage,
    Server,
    TextContent,
    TextResourceContents,
    ToolError,
)

server = Server("mcpvisor-conformance-server", "0.1.0")


# -- test media: made here rather than pasted as base64, so they are plainly what they claim to be ------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _one_red_pixel_png() -> bytes:
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB, no interlace
    scanline = b"\x00\xff\x00\x00"  # filter "none", then one red pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanline))
        + _png_chunk(b"IEND", b"")
    )


def _silent_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8)
    return buffer.getvalue()


PNG = _one_red_pixel_png()
WAV = _silent_wav()


def _image_content() -> ImageContent:
    return ImageContent(base64.b64encode(PNG).decode("ascii"), "image/png")


# -- tools ----------------------------------------------------------------------------------------------


@server.tool
def test_simple_text() -> str:
    """Returns one text block (tools-call-simple-text)."""
    return "This is a simple text response for testing."


@server.tool
def test_image_content() -> Image:
    """Returns a 1x1 red PNG (tools-call-image)."""
    return Image(PNG, mime_type="image/png")


@server.tool
def test_audio_content() -> Audio:
    """Returns a short silent WAV (tools-call-audio)."""
    return Audio(WAV, mime_type="audio/wav")


@server.tool
def test_embedded_resource() -> EmbeddedResource:
    """Returns an embedded text resource (tools-call-embedded-resource)."""
    contents = TextResourceContents(
        "test://embedded-resource", "This is an embedded resource content.", "text/plain"
    )
    return EmbeddedResource(contents)


@server.tool
def test_multiple_content_types() -> list[str | ImageContent | EmbeddedResource]:
    """Returns text, an image and an embedded resource together (tools-call-mixed-content)."""
    data = json.dumps({"test": "data", "value": 123})
    contents = TextResourceContents("test://mixed-content-resource", data, "application/json")
    return ["Multiple content types test:", _image_content(), EmbeddedResource(contents)]


@server.tool
async def test_tool_with_logging(ctx: Context) -> str:
    """Sends three info logs while it runs (tools-call-with-logging)."""
    await ctx.info("Tool execution started")
    await trio.sleep(0.05)
    await ctx.info("Tool processing data")
    await trio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Tool with logging executed successfully"


@server.tool
def test_error_handling() -> str:
    """Always fails with a tool error the model can read (tools-call-error)."""
    raise ToolError("This tool intentionally returns an error for testing")


@server.tool
async def test_tool_with_progress(ctx: Context) -> str:
    """Reports progress 0, 50 and 100 of 100 (tools-call-with-progress)."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        if step < 100:
            await trio.sleep(0.05)
    return "Progress tool completed"


@server.tool
async def test_sampling(prompt: Annotated[str, "The prompt to send to the LLM"], ctx: Context) -> str:
    """Asks the client's model to answer ``prompt`` (tools-call-sampling)."""
    result = await ctx.sample(prompt, max_tokens=100)
    content = result.get("content")
    text = content.get("text") if isinstance(content, dict) else None
    return f"LLM response: {text if text is not None else 'No response'}"


@server.tool
async def test_elicitation(message: Annotated[str, "The message to show the user"], ctx: Context) -> str:
    """Asks the user for a username and an email (tools-call-elicitation)."""
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    result = await ctx.elicit(message, schema)
    return f"User response: action={result.get('action')}, content={json.dumps(result.get('content', {}))}"


@server.tool
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Elicits with a default for every primitive type (elicitation-sep1034-defaults)."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": True},
        },
    }
    result = await ctx.elicit("Please provide user information", schema)
    return _elicitation_summary(result)


def _choices(values: list[str], titles: list[str]) -> list[dict[str, str]]:
    return [{"const": value, "title": title} for value, title in zip(values, titles, strict=True)]


@server.tool
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Elicits with all five enum shapes of SEP-1330 (elicitation-sep1330-enums)."""
    options = ["option1", "option2", "option3"]
    values = ["value1", "value2", "value3"]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "description": "Untitled single-select", "enum": options},
            "titledSingle": {
                "type": "string",
                "description": "Titled single-select",
                "oneOf": _choices(values, ["First Option", "Second Option", "Third Option"]),
            },
            "legacyEnum": {
                "type": "string",
                "description": "Legacy titled enum",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {
                "type": "array",
                "description": "Untitled multi-select",
                "items": {"type": "string", "enum": options},
            },
            "titledMulti": {
                "type": "array",
                "description": "Titled multi-select",
                "items": {"anyOf": _choices(values, ["First Choice", "Second Choice", "Third Choice"])},
            },
        },
    }
    result = await ctx.elicit("Please select values using different enum schema types", schema)
    return _elicitation_summary(result)


def _elicitation_summary(result: dict[str, Any]) -> str:
    content = result.get("content") if result.get("action") == "accept" else {}
    return f"Elicitation completed: action={result.get('action')}, content={json.dumps(content)}"


# Hand-written input schemas: keywords a signature cannot express, advertised verbatim.

_ADDRESS = {
    "$anchor": "addressDef",
    "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
}
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": _ADDRESS},
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@server.tool(name="json_schema_2020_12_tool", input_schema=JSON_SCHEMA_2020_12)
def json_schema_2020_12_tool(**arguments: Any) -> str:
    """Tool with JSON Schema 2020-12 features (json-schema-2020-12)."""
    return f"received {json.dumps(arguments, sort_keys=True)}"


@server.tool(
    input_schema={
        "type": "object",
        "properties": {
            "region": {"type": "string", "description": "Where to run", "x-mcp-header": "Region"},
            "query": {"type": "string", "description": "What to run"},
        },
        "required": ["region", "query"],
    }
)
def test_custom_header(region: str, query: str) -> str:
    """Mirrors its region in an Mcp-Param-Region header (http-custom-header-server-validation)."""
    return f"ran {query!r} in {region}"


# 2026-07-28 (server-stateless): diagnostic tools the scenario calls by name.


@server.tool
async def test_missing_capability(ctx: Context) -> str:
    """Needs sampling, so a client that did not declare it gets -32021 (server-stateless)."""
    result = await ctx.sample("Say hello", max_tokens=10)
    return f"sampled: {result.get('content')}"


@server.tool
async def test_logging_tool(ctx: Context) -> str:
    """Logs once; the client only sees it if it asked for a log level (server-stateless)."""
    await ctx.info("test_logging_tool ran")
    return "logged"


@server.tool
async def test_streaming_elicitation(ctx: Context) -> str:
    """Elicits mid-call; 2026-07-28 must not send it as a stream request (server-stateless)."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    result = await ctx.elicit("Anything to add?", schema)
    return _elicitation_summary(result)


@server.tool
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE stream mid-call; the client resumes with Last-Event-ID (server-sse-polling)."""
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await trio.sleep(0.2)  # the client reconnects meanwhile
    await ctx.info("After reconnect")
    return "Reconnection test completed"


def _dynamic_tool() -> str:
    """Exists only between two calls of test_trigger_tool_change."""
    return "dynamic"


def _dynamic_prompt() -> str:
    """Exists only between two calls of test_trigger_prompt_change."""
    return "dynamic"


@server.tool
async def test_trigger_tool_change() -> str:
    """Adds or removes a tool, so clients get tools/list_changed (server-stateless).

    Async on purpose: a sync tool runs in a worker thread, and registering tells the runtime, which lives
    on the trio thread.
    """
    try:
        server.remove_tool("test_dynamic_tool")
    except KeyError:
        server.tool(name="test_dynamic_tool")(_dynamic_tool)
        return "added test_dynamic_tool"
    return "removed test_dynamic_tool"


@server.tool
async def test_trigger_prompt_change() -> str:
    """Adds or removes a prompt, so clients get prompts/list_changed (server-stateless)."""
    try:
        server.remove_prompt("test_dynamic_prompt")
    except KeyError:
        server.prompt(name="test_dynamic_prompt")(_dynamic_prompt)
        return "added test_dynamic_prompt"
    return "removed test_dynamic_prompt"


# 2026-07-28 multi round-trip requests (SEP-2322): a tool answers InputRequired, the client fulfils the
# requests and calls again with ``inputResponses`` (``ctx.input_responses``) and the echoed state.


def _ask_name(message: str = "What is your name?") -> dict[str, Any]:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return InputRequired.elicitation(message, schema)


def _accepted(answer: Any, field: str) -> Any:
    """The accepted elicitation's ``field``, or None (declined, cancelled, or not an answer at all)."""
    if not isinstance(answer, dict) or answer.get("action") != "accept":
        return None
    content = answer.get("content")
    return content.get(field) if isinstance(content, dict) else None


def _sampled_text(answer: Any) -> str | None:
    content = answer.get("content") if isinstance(answer, dict) else None
    return content.get("text") if isinstance(content, dict) else None


def _capital_question() -> dict[str, Any]:
    question = {"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}
    return InputRequired.sampling([question], 100)


@server.tool
async def test_input_required_result_elicitation(ctx: Context) -> str | InputRequired:
    """Asks for a name, then greets (input-required-result-basic-elicitation and its error cases).

    A missing or unusable answer is asked for again rather than refused (missing-input-response).
    """
    name = _accepted(ctx.input_responses.get("user_name"), "name")
    if not isinstance(name, str):
        return InputRequired({"user_name": _ask_name()})
    return f"Hello, {name}!"


@server.tool
async def test_input_required_result_sampling(ctx: Context) -> str | InputRequired:
    """Asks the client's model a question, then reports its answer (input-required-result-basic-sampling)."""
    answer = _sampled_text(ctx.input_responses.get("capital_question"))
    if answer is None:
        return InputRequired({"capital_question": _capital_question()})
    return f"The model said: {answer}"


@server.tool
async def test_input_required_result_list_roots(ctx: Context) -> str | InputRequired:
    """Asks for the client's roots, then lists them (input-required-result-basic-list-roots)."""
    answer = ctx.input_responses.get("client_roots")
    roots = answer.get("roots") if isinstance(answer, dict) else None
    if not isinstance(roots, list):
        return InputRequired({"client_roots": InputRequired.roots()})
    uris = [root.get("uri") for root in roots if isinstance(root, dict)]
    return f"Client roots: {', '.join(map(str, uris)) or '(none)'}"


@server.tool
async def test_input_required_result_request_state(ctx: Context) -> str | InputRequired:
    """Round-trips a state the server checks (input-required-result-request-state)."""
    confirmed = _accepted(ctx.input_responses.get("confirm"), "ok")
    if ctx.request_state != "awaiting-confirmation" or confirmed is None:
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        ask = InputRequired.elicitation("Please confirm", schema)
        return InputRequired({"confirm": ask}, state="awaiting-confirmation")
    return f"state-ok: confirmed={confirmed}"


@server.tool
async def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequired:
    """Asks for a name, a generated greeting and the roots at once (...-multiple-input-requests)."""
    greeting = {"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}
    wanted = {
        "user_name": _ask_name(),
        "greeting": InputRequired.sampling([greeting], 50),
        "client_roots": InputRequired.roots(),
    }
    answers = ctx.input_responses
    if ctx.request_state != "all-three" or not all(key in answers for key in wanted):
        return InputRequired(wanted, state="all-three")
    name = _accepted(answers["user_name"], "name")
    return f"{_sampled_text(answers['greeting'])}, {name}! (roots: {answers['client_roots'].get('roots')})"


def _ask_color() -> dict[str, Any]:
    schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    return InputRequired.elicitation("Step 2: What is your favorite color?", schema)


@server.tool
async def test_input_required_result_multi_round(ctx: Context) -> str | InputRequired:
    """Two rounds of questions; the state says which round this is (input-required-result-multi-round)."""
    state = json.loads(ctx.request_state) if ctx.request_state else {"step": 1}
    if state["step"] == 1:
        name = _accepted(ctx.input_responses.get("step1"), "name")
        if name is None:
            return InputRequired({"step1": _ask_name("Step 1: What is your name?")}, state='{"step": 1}')
        return InputRequired({"step2": _ask_color()}, state=json.dumps({"step": 2, "name": name}))
    color = _accepted(ctx.input_responses.get("step2"), "color")
    if color is None:
        return InputRequired({"step2": _ask_color()}, state=ctx.request_state)
    return f"{state['name']} likes {color}"


@server.tool
async def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequired:
    """Its state is sealed by the runtime; an edited one never reaches here (...-tampered-state)."""
    if ctx.request_state != "sealed":
        return InputRequired({"user_name": _ask_name()}, state="sealed")
    return f"Hello, {_accepted(ctx.input_responses.get('user_name'), 'name')}!"


@server.tool
async def test_input_required_result_capabilities(ctx: Context) -> str | InputRequired:
    """Asks only for what the client declared it can answer (input-required-result-capability-check)."""
    possible = {
        "elicitation": ("user_name", _ask_name()),
        "sampling": ("capital_question", _capital_question()),
        "roots": ("client_roots", InputRequired.roots()),
    }
    wanted = dict(value for cap, value in possible.items() if cap in ctx.client_capabilities)
    missing = {key: ask for key, ask in wanted.items() if key not in ctx.input_responses}
    if missing:
        return InputRequired(missing)
    return f"answered: {', '.join(sorted(wanted)) or 'nothing to ask'}"


# -- resources ------------------------------------------------------------------------------------------


@server.resource("test://static-text", mime_type="text/plain")
def static_text() -> str:
    """A fixed text resource (resources-read-text)."""
    return "This is the content of the static text resource."


@server.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A fixed binary resource, a PNG (resources-read-binary)."""
    return PNG


@server.resource_template("test://template/{id}/data", mime_type="application/json")
def template_data(id: str) -> dict[str, Any]:
    """Data for one id, substituted from the URI (resources-templates-read)."""
    return {"id": id, "templateTest": True, "data": f"Data for ID: {id}"}


@server.resource("test://watched-resource", mime_type="text/plain")
def watched_resource() -> str:
    """A resource clients subscribe to (resources-subscribe, resources-unsubscribe)."""
    return "Watched resource content"


# -- prompts --------------------------------------------------------------------------------------------


@server.prompt
def test_simple_prompt() -> str:
    """A prompt with no arguments (prompts-get-simple)."""
    return "This is a simple prompt for testing."


@server.prompt
def test_prompt_with_arguments(
    arg1: Annotated[str, "First test argument"], arg2: Annotated[str, "Second test argument"]
) -> str:
    """A prompt with two required arguments (prompts-get-with-args)."""
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt
def test_prompt_with_embedded_resource(
    resourceUri: Annotated[str, "URI of the resource to embed"],  # the suite's spelling
) -> list[PromptMessage]:
    """A prompt that embeds a resource (prompts-get-embedded-resource)."""
    contents = TextResourceContents(resourceUri, "Embedded resource content for testing.", "text/plain")
    return [
        PromptMessage("user", EmbeddedResource(contents)),
        PromptMessage("user", TextContent("Please process the embedded resource above.")),
    ]


@server.prompt
def test_prompt_with_image() -> list[PromptMessage]:
    """A prompt that shows an image (prompts-get-with-image)."""
    return [
        PromptMessage("user", _image_content()),
        PromptMessage("user", TextContent("Please analyze the image above.")),
    ]


@server.prompt
async def test_input_required_result_prompt(ctx: Context) -> str | InputRequired:
    """Asks what context to use before it renders (input-required-result-non-tool-request)."""
    context = _accepted(ctx.input_responses.get("user_context"), "context")
    if not isinstance(context, str):
        schema = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
        ask = InputRequired.elicitation("What context should the prompt use?", schema)
        return InputRequired({"user_context": ask})
    return f"Use this context: {context}"


# -- background tasks (the 2026-07-28 tasks extension, SEP-2663: the ``tasks-*`` scenarios) ------------
# A tool with ``task=`` runs as a task when the client declares the extension; ``greet`` never does.


@server.tool
async def greet(name: str) -> str:
    """A plain, sync-only tool (tasks-lifecycle, tasks-dispatch-and-envelope)."""
    return f"Hello, {name}!"


@server.tool(task="optional")
async def slow_compute(seconds: float, label: str = "") -> str:
    """Sleeps ``seconds`` then answers; cancelling the task cancels the sleep (tasks-lifecycle)."""
    await trio.sleep(seconds)
    return f"computed {label} after {seconds:g}s"


@server.tool(task="required")
async def failing_job() -> str:
    """A tool execution error after about a second: ``completed`` with ``isError`` (tasks-lifecycle);
    ``required``, so without the extension it is -32021 (tasks-required-task-error)."""
    await trio.sleep(1)
    raise ToolError("failing_job always fails")


@server.tool(task="optional")
async def protocol_error_job() -> str:
    """A protocol-level failure: the task ends ``failed`` with an inlined error (tasks-lifecycle)."""
    raise RuntimeError("protocol_error_job breaks on purpose")


@server.tool(task="optional")
async def confirm_delete(filename: str, ctx: Context) -> str:
    """Asks for confirmation from inside the task: ``input_required`` until ``tasks/update``
    (tasks-mrtr-input)."""
    schema = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
    answer = await ctx.elicit(f"Delete {filename}?", schema)
    return f"deleted {filename}" if _accepted(answer, "confirm") else f"kept {filename}"


@server.tool(task="optional")
async def multi_input(ctx: Context) -> str:
    """Two elicitations at once, so two input requests are pending together (tasks-mrtr-input)."""
    answers: dict[str, Any] = {}

    async def ask(key: str, message: str) -> None:
        answers[key] = await ctx.elicit(
            message, {"type": "object", "properties": {"name": {"type": "string"}}}
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "first", "First name?")
        nursery.start_soon(ask, "second", "Second name?")
    return f"got {_accepted(answers['first'], 'name')} and {_accepted(answers['second'], 'name')}"


@server.tool(task="required")
async def test_tool_with_task(ctx: Context) -> str | InputRequired:
    """An MRTR round first (InputRequired for ``user_name``), then the task (tasks-mrtr-composition)."""
    name = _accepted(ctx.input_responses.get("user_name"), "name")
    if not isinstance(name, str):
        return InputRequired({"user_name": _ask_name()})
    await trio.sleep(0.5)  # the long part, as a task
    return f"Hello, {name}! (from a task)"


# -- completion -----------------------------------------------------------------------------------------

_ARG1_SUGGESTIONS = ("paris", "park", "party", "test", "testing", "testValue1")


@server.completion("ref/prompt", "test_prompt_with_arguments")
def complete_prompt_argument(argument: str, value: str) -> list[str]:
    """Suggestions for test_prompt_with_arguments' arguments (completion-complete)."""
    return [s for s in _ARG1_SUGGESTIONS if s.startswith(value)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3001, help="port to listen on (default 3001)")
    parser.add_argument(
        "--state-store", default="memory://", help="memory:// | sqlite:///file.db | redis://..."
    )
    parser.add_argument(
        "--task-backend", default="memory://", help="memory:// | sqlite:///file.db | redis://..."
    )
    args = parser.parse_args()
    server.run(
        transport="http",
        host=args.host,
        port=args.port,
        session_state_store=args.state_store,
        task_backend=args.task_backend,
    )


if __name__ == "__main__":
    main()
