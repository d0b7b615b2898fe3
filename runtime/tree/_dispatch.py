"""`handle_request`: what each MCP method does, answered from a `Server` for one `RequestEnv`.

It returns the wire result (a JSON-ready dict) or raises ``JsonRpcError``; the runtime turns either into
the reply and, for 2026-07-28 requests, finishes the result with ``finish_stateless_result``.
``initialize`` is not here: the session actor answers it with ``Server.initialize_result``.

List methods accept a ``cursor`` and ignore it: every list is returned whole, with no ``nextCursor``.
A server registers its handlers at import time, so lists are small, and a client that pages just stops
after the first page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import trio
from mcpvisor.backends import TaskStatus

from ..protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    ArgumentError,
    JsonRpcError,
    Request,
    ToolSignature,
    is_stateless,
    method_exists_in,
    parse_set_level,
    to_wire,
)
from ..protocol._tasks import (
    TaskRequest,
    create_task_result_v2,
    declares_tasks_extension,
    missing_tasks_extension,
    parse_task_param,
)
from ..server._caller import check_tool_scopes
from ..server._completion import Completion, completion_of
from ..server._context import Context
from ..server._env import NoSessionState, RequestEnv
from ..server._errors import CrashSession, MissingClientCapability, ToolError
from ..server._handler import invoke
from ..server._input_rounds import (
    InputRequired,
    NeedsInput,
    RoundInputs,
    input_required_wire,
    missing_capability,
    read_inputs,
)
from ..server._prompts import bind_prompt, prompt_result
from ..server._resources import RegisteredTemplate, read_result
from ..server._schema_arguments import SchemaArguments
from ..server._server import Server
from ..server._tools import error_result, tool_result
from ._task_env import TaskEnv
from ._task_methods import (
    cancel_task,
    get_task,
    list_tasks,
    serves_tasks,
    start_task,
    task_client_of,
    task_owner,
    task_result,
    update_task,
)
from ._task_runtime import (
    DiscardTask,
    Prelude,
    StartTask,
    TaskControl,
    TaskOutcome,
    TaskWork,
    encode_outcome_error,
)

__all__ = ["RESOURCE_NOT_FOUND", "CrashSession", "handle_request"]

#: MCP's "Resource not found" (`resources/read` of a URI nothing answers) up to 2025-11-25.
RESOURCE_NOT_FOUND: Final = -32002

#: Revisions that answer bad tool arguments with -32602; from 2025-11-25 on (SEP-1303) they are tool
#: execution errors (`isError: true`) so the model can read the message and correct its call.
_PROTOCOL_ERROR_VALIDATION: Final = frozenset({"2024-11-05", "2025-03-26", "2025-06-18"})

#: Rounds dispatch fulfils itself for a handshake-era session before giving up on a handler that
#: keeps asking for input (a loop that never ends would hold the request forever).
_MAX_ROUNDS: Final = 16

_Method = Callable[[Server, Mapping[str, Any], RequestEnv], Awaitable[Any]]


async def handle_request(server: Server, request: Request, env: RequestEnv) -> Any:
    """Answer one request: the wire result, or ``JsonRpcError``. ``CrashSession`` and
    ``BaseException``s from handlers propagate untouched."""
    method = _METHODS.get(request.method)
    if method is None or not method_exists_in(request.method, env.protocol_version):
        raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {request.method}")
    params = request.params if request.params is not None else {}
    return await method(server, params, env)


def _param_str(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str):
        raise JsonRpcError(INVALID_PARAMS, f"params.{key} must be a string", {"field": key})
    return value


_T = TypeVar("_T")


def _named(registry: Mapping[str, _T], what: str, params: Mapping[str, Any]) -> tuple[str, _T]:
    """``params.name`` and what it names in ``registry``; an unknown name is -32602 ``Unknown <what>``."""
    name = _param_str(params, "name")
    found = registry.get(name)
    if found is None:
        raise JsonRpcError(INVALID_PARAMS, f"Unknown {what}: {name!r}", {"name": name})
    return name, found


# -- ping and logging ---------------------------------------------------------------------------------


async def _ping(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return {}


async def _set_level(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    await env.set_log_level(parse_set_level(params))
    return {}


async def _discover(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return server.discover_result(env.protocol_version)


# -- tools --------------------------------------------------------------------------------------------


async def _list_tools(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return server.listing("tools/list")


async def _call_tool(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    name, tool = _named(server._tools, "tool", params)
    check_tool_scopes(name, tool.required_scopes, getattr(env, "principal", None))
    task = _task_of(name, tool.task_support, params, env)
    try:
        kwargs = _bind(tool.signature, params.get("arguments"))
    except ArgumentError as exc:
        if env.protocol_version in _PROTOCOL_ERROR_VALIDATION:
            raise
        invalid = to_wire(error_result(f"Invalid arguments for tool {name!r}: {exc.message}"))
        if task is None:
            return invalid
        kwargs, invalid_result = {}, invalid
    else:
        invalid_result = None
    handle = kwargs.get(tool.handle_param) if tool.handle_param is not None else None
    if handle is not None:
        try:  # checked before the tool runs: its owner, its lifetime, that it still exists
            await env.use_handle(handle)
        except ToolError as exc:
            return to_wire(error_result(str(exc)))

    async def run(ctx: Context) -> Any:
        if invalid_result is not None:
            return error_result(invalid_result["content"][0]["text"])
        try:
            return await invoke(
                tool.handler, kwargs, ctx, lambda value: tool_result(value, tool.wrap, tool.output_check)
            )
        except ToolError as exc:
            return error_result(str(exc))

    if task is not None:
        return await start_task(env, task, _tool_task_work(server, env, name, params, run))
    if tool.task_support != "forbidden" and is_stateless(env.protocol_version) and task_client_of(env):
        if declares_tasks_extension(env.client_capabilities):
            return await _start_task_v2(server, env, name, params, run)
        if tool.task_support == "required":
            raise missing_tasks_extension(f"tool {name!r} (execution.taskSupport 'required')")
    return await _in_rounds(server, env, "tools/call", name, params, run)


async def _start_task_v2(
    server: Server,
    env: RequestEnv,
    name: str,
    params: Mapping[str, Any],
    run: Callable[[Context], Awaitable[Any]],
) -> Any:
    """A 2026-07-28 ``tools/call`` of a task tool (SEP-2663: the server decides to make a task).

    The body starts at once under the TaskSupervisor. If, in its *prelude*, it answers
    ``InputRequired`` (an MRTR round: the tool gathers what it needs before the long part), the call
    answers that inline and the task is discarded unseen; otherwise (it asks with ``ctx.elicit``, ends,
    or is still working after ``prelude_wait``) the call answers a flat ``CreateTaskResult``. A tool
    error is ``completed`` with ``isError``; ``failed`` is for protocol errors.
    """
    client = task_client_of(env)
    assert client is not None
    binding = f"tools/call\n{name}"
    seal = server._state_seal
    inputs = read_inputs(params, seal, binding)
    prelude = Prelude()

    async def work(control: TaskControl) -> TaskOutcome | None:
        ctx = Context(TaskEnv(env, control), inputs)
        try:
            value = await run(ctx)
        except JsonRpcError as exc:
            prelude.promote()
            error = encode_outcome_error(exc.code, exc.message, exc.data)
            return TaskOutcome(TaskStatus.FAILED, error=error, status_message=exc.message)
        if isinstance(value, InputRequired):
            if prelude.keep_inline(value):
                return None
            message = "the tool answered InputRequired after it became a task: inside a task, use ctx.elicit"
            error = encode_outcome_error(INTERNAL_ERROR, message)
            return TaskOutcome(TaskStatus.FAILED, error=error, status_message=message)
        prelude.promote()
        return TaskOutcome(TaskStatus.COMPLETED, result=to_wire(value))

    record = await client.call(
        StartTask(task_owner(env), work, None, "The operation is now in progress.", prelude)
    )
    with trio.move_on_after(client.prelude_wait):
        await prelude.decided.wait()
    if prelude.promote():
        return create_task_result_v2(record)
    await client.call(DiscardTask(record.task_id))
    inline: InputRequired = prelude.inline
    lacking = missing_capability(inline.requests, env.client_capabilities)
    if lacking is not None:
        raise MissingClientCapability(lacking)
    return input_required_wire(inline, seal, binding, inputs.asked)


def _task_of(name: str, support: str, params: Mapping[str, Any], env: RequestEnv) -> TaskRequest | None:
    """``params.task`` when this call is to run as a task; the spec's -32601 for a call that breaks the
    tool's ``execution.taskSupport``. Revisions without the tasks utility ignore ``params.task``."""
    if not serves_tasks(env):
        return None
    task = parse_task_param(params)
    if task is None and support == "required":
        raise JsonRpcError(
            METHOD_NOT_FOUND,
            f"tool {name!r} must run as a task (execution.taskSupport is 'required'): "
            'call it with params.task, e.g. {"task": {}}',
        )
    if task is not None and support == "forbidden":
        raise JsonRpcError(
            METHOD_NOT_FOUND,
            f"tool {name!r} cannot run as a task (execution.taskSupport is 'forbidden'): "
            "call it without params.task",
        )
    return task


def _tool_task_work(
    server: Server,
    env: RequestEnv,
    name: str,
    params: Mapping[str, Any],
    run: Callable[[Context], Awaitable[Any]],
) -> TaskWork:
    """The body of a task-augmented ``tools/call``: the same rounds as the inline call, in a TaskEnv.

    2025-11-25 says a tool result with ``isError`` makes the task ``failed`` (its result is still what
    ``tasks/result`` returns); a JSON-RPC error is stored and answered as that error.
    """

    async def work(control: TaskControl) -> TaskOutcome:
        task_env = TaskEnv(env, control)
        try:
            wire = await _in_rounds(server, task_env, "tools/call", name, params, run)
        except JsonRpcError as exc:
            return TaskOutcome(
                TaskStatus.FAILED,
                error=encode_outcome_error(exc.code, exc.message, exc.data),
                status_message=exc.message,
            )
        except NoSessionState as exc:
            return TaskOutcome(
                TaskStatus.FAILED,
                error={"code": INTERNAL_ERROR, "message": str(exc)},
                status_message=str(exc),
            )
        if wire.get("isError"):
            return TaskOutcome(TaskStatus.FAILED, result=wire, status_message="the tool reported an error")
        return TaskOutcome(TaskStatus.COMPLETED, result=wire)

    return work


async def _in_rounds(
    server: Server,
    env: RequestEnv,
    method: str,
    subject: str,
    params: Mapping[str, Any],
    run: Callable[[Context], Awaitable[Any]],
) -> Any:
    """Run a handler that may answer ``InputRequired`` (SEP-2322); the wire result.

    On 2026-07-28 the round ends there: the client gets the InputRequiredResult and retries with its
    answers. A handshake-era session has a stream, so the requests go to the client from here and the
    handler runs again with the answers, until it gives a final result.
    """
    binding = f"{method}\n{subject}"
    seal = server._state_seal
    stateless = is_stateless(env.protocol_version)
    inputs = read_inputs(params, seal, binding) if stateless else RoundInputs()
    for _ in range(_MAX_ROUNDS):
        try:
            value = await run(Context(env, inputs))
        except NeedsInput as need:  # ctx.elicit & co. on a 2026-07-28 request
            value = InputRequired({need.key: need.request}, state=inputs.state)
        if not isinstance(value, InputRequired):
            return to_wire(value)
        lacking = missing_capability(value.requests, env.client_capabilities)
        if lacking is not None:
            raise MissingClientCapability(lacking)
        if stateless:
            return input_required_wire(value, seal, binding, inputs.asked)
        answers = {
            key: await env.request_client(request["method"], request["params"])
            for key, request in value.requests.items()
        }
        inputs = RoundInputs(answers, value.state)
    raise JsonRpcError(INTERNAL_ERROR, f"{method} {subject!r} asked for input more than {_MAX_ROUNDS} times")


def _bind(signature: ToolSignature | SchemaArguments, arguments: Any) -> dict[str, Any]:
    if arguments is not None and not isinstance(arguments, Mapping):
        raise ArgumentError(None, "params.arguments must be an object")
    return signature.bind(arguments)


# -- resources ----------------------------------------------------------------------------------------


async def _list_resources(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return server.listing("resources/list")


async def _list_templates(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return server.listing("resources/templates/list")


def _find_template(server: Server, uri: str) -> tuple[RegisteredTemplate, dict[str, str]] | None:
    for template in server._templates.values():
        variables = template.parsed.match(uri)
        if variables is not None:
            return template, variables
    return None


def _not_found(uri: str, version: str) -> JsonRpcError:
    # SEP-2164 (2026-07-28) moved "resource not found" to -32602; earlier revisions specify -32002.
    code = INVALID_PARAMS if is_stateless(version) else RESOURCE_NOT_FOUND
    return JsonRpcError(code, f"Resource not found: {uri}", {"uri": uri})


async def _read_resource(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    uri = _param_str(params, "uri")
    fixed = server._resources.get(uri)
    if fixed is not None:
        mime = fixed.resource.mime_type
        handler = fixed.handler

        async def run_fixed(ctx: Context) -> Any:
            return await _guard_tool_error(
                invoke(handler, {}, ctx, lambda value: read_result(uri, value, mime))
            )

        return await _in_rounds(server, env, "resources/read", uri, params, run_fixed)
    found = _find_template(server, uri)
    if found is None:
        raise _not_found(uri, env.protocol_version)
    template, variables = found
    missing = sorted(template.required - set(variables))
    if missing:
        raise JsonRpcError(
            INVALID_PARAMS, f"URI {uri!r} lacks the variable {missing[0]!r}", {"field": missing[0]}
        )
    kwargs = {name: template.converters[name](name, text) for name, text in variables.items()}
    mime = template.template.mime_type

    async def run(ctx: Context) -> Any:
        return await _guard_tool_error(
            invoke(template.handler, kwargs, ctx, lambda value: read_result(uri, value, mime))
        )

    return await _in_rounds(server, env, "resources/read", uri, params, run)


async def _subscribe(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    uri = _param_str(params, "uri")
    if uri not in server._resources and _find_template(server, uri) is None:
        raise _not_found(uri, env.protocol_version)
    await env.subscribe(uri)
    return {}


async def _unsubscribe(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    await env.unsubscribe(_param_str(params, "uri"))
    return {}


# -- prompts ------------------------------------------------------------------------------------------


async def _list_prompts(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    return server.listing("prompts/list")


async def _get_prompt(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    name, prompt = _named(server._prompts, "prompt", params)
    kwargs = bind_prompt(prompt, params.get("arguments"))
    description = prompt.prompt.description

    async def run(ctx: Context) -> Any:
        return await _guard_tool_error(
            invoke(prompt.handler, kwargs, ctx, lambda value: prompt_result(value, description))
        )

    return await _in_rounds(server, env, "prompts/get", name, params, run)


# -- completion ---------------------------------------------------------------------------------------


async def _complete(server: Server, params: Mapping[str, Any], env: RequestEnv) -> Any:
    ref = params.get("ref")
    argument = params.get("argument")
    if not isinstance(ref, Mapping) or not isinstance(argument, Mapping):
        raise JsonRpcError(INVALID_PARAMS, "completion/complete needs params.ref and params.argument")
    kind = ref.get("type")
    if kind == "ref/prompt":
        name = _param_str(ref, "name")
        if name not in server._prompts:
            raise JsonRpcError(INVALID_PARAMS, f"Unknown prompt: {name!r}", {"name": name})
    elif kind == "ref/resource":
        name = _param_str(ref, "uri")
        if name not in server._templates and name not in server._resources:
            raise JsonRpcError(INVALID_PARAMS, f"Unknown resource template: {name!r}", {"uri": name})
    else:
        raise JsonRpcError(INVALID_PARAMS, "params.ref.type must be 'ref/prompt' or 'ref/resource'")
    arg_name = _param_str(argument, "name")
    value = _param_str(argument, "value")
    context = params.get("context")
    chosen = context.get("arguments") if isinstance(context, Mapping) else None
    completer = server._completers.get((kind, name))
    if completer is None:
        return {"completion": Completion(()).to_wire()}
    offered = {"argument": arg_name, "value": value, "arguments": dict(chosen or {})}
    kwargs = {p.name: offered[p.name] for p in completer.handler.user_parameters()}
    completion = await _guard_tool_error(invoke(completer.handler, kwargs, Context(env), completion_of))
    return {"completion": completion.to_wire()}


async def _guard_tool_error(call: Awaitable[Any]) -> Any:
    """Outside tools there is no error result: a ``ToolError`` becomes -32603 with its message."""
    try:
        return await call
    except ToolError as exc:
        raise JsonRpcError(INTERNAL_ERROR, str(exc)) from exc


_METHODS: Final[Mapping[str, _Method]] = {
    "ping": _ping,
    "logging/setLevel": _set_level,
    "server/discover": _discover,
    "tools/list": _list_tools,
    "tools/call": _call_tool,
    "resources/list": _list_resources,
    "resources/templates/list": _list_templates,
    "resources/read": _read_resource,
    "resources/subscribe": _subscribe,
    "resources/unsubscribe": _unsubscribe,
    "prompts/list": _list_prompts,
    "prompts/get": _get_prompt,
    "completion/complete": _complete,
    "tasks/get": get_task,
    "tasks/result": task_result,
    "tasks/list": list_tasks,
    "tasks/cancel": cancel_task,
    "tasks/update": update_task,
}
