"""Registered tools: their `Tool` record, argument binding, and turning return values into results.

What a tool returns decides what the client gets:

- ``str`` -> one text block; a content block, ``Image``/``Audio``, or a list of those (strings allowed)
  -> that content; ``CallToolResult`` -> as is; ``None`` -> no content (unless an output schema is
  advertised: then ``str`` and ``None`` are structured like any other value);
- anything structured (dict, list, number, bool, attrs instance) -> ``structuredContent`` plus the same
  JSON as text, for clients that do not read structured content. ``structuredContent`` must be an
  object, so anything else is wrapped as ``{"result": value}``.

When the return annotation is structured, ``tools/list`` shows an ``outputSchema`` built from it by the
same rules as input schemas, and the wrapping follows the schema, so the two always agree.
"""

from __future__ import annotations

import enum
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs
import cattrs

from ..protocol import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    Tool,
    ToolSignature,
)
from ..protocol._schema import _compile, _Invalid, hint_is
from ..protocol._tasks import TASK_SUPPORT_VALUES
from ._context import Context
from ._handler import Handler
from ._media import Audio, Image
from ._schema_arguments import SchemaArguments
from ._state_handle import StateHandle

OutputCheck: TypeAlias = Callable[[Any], Any]

CONTENT_TYPES: Final = (TextContent, ImageContent, AudioContent, EmbeddedResource, ResourceLink)

# Users' attrs classes unstructure with their own field names (the wire converter camelCases records).
_values: Final = cattrs.Converter()
_values.register_unstructure_hook(enum.Enum, lambda member: member.value)

_CONTENT_HINTS: Final = (CallToolResult, Image, Audio, *CONTENT_TYPES)
_UNSTRUCTURED_HINTS: Final = (str, type(None), *_CONTENT_HINTS)


@attrs.frozen
class RegisteredTool:
    tool: Tool
    #: Checks and binds a call's arguments: from the hints, or from a hand-written ``input_schema``.
    signature: ToolSignature | SchemaArguments
    handler: Handler
    #: True/False: wrap structured values in {"result": ...} as the output schema says; None: by value.
    wrap: bool | None
    #: Checks a structured value against the schema built from the return hint (None: nothing to check).
    output_check: OutputCheck | None = None
    #: The parameter taking a ``StateHandle`` (checked, then the request's state owner), if any.
    handle_param: str | None = None
    #: ``forbidden`` / ``optional`` / ``required``: may (must) the tool run as a background task?
    task_support: str = "forbidden"
    #: OAuth scopes a caller's token must grant to call it (docs/auth.md); checked where the server
    #: authenticates (HTTP with ``AuthSettings``), ignored where there is no principal (stdio).
    required_scopes: tuple[str, ...] = ()


def handle_parameter(fn: Any, label: str) -> str | None:
    """The one parameter of ``fn`` annotated ``StateHandle`` (or ``StateHandle | None``), if any.

    One at most: ``ctx.get_state`` acts on one handle, and a tool quietly picking one of two would
    read or write the wrong values.
    """
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return None
    names = [name for name, hint in hints.items() if name != "return" and hint_is(hint, (StateHandle,))]
    if len(names) > 1:
        raise TypeError(
            f"{label}: parameters {', '.join(map(repr, names))} all take a StateHandle; a tool takes one "
            "(its Context's state acts on it): pass the others as plain str"
        )
    return names[0] if names else None


def output_schema_for(hint: Any) -> tuple[dict[str, Any] | None, bool | None, OutputCheck | None]:
    """(outputSchema, wrap, check) for a return annotation; all None when it is not structured."""
    if hint is inspect.Signature.empty or hint is None:
        return None, None, None
    if isinstance(hint, type) and issubclass(hint, _UNSTRUCTURED_HINTS):
        return None, None, None
    if _mentions_content(hint):
        return None, None, None
    try:
        schema, check = _compile(hint, lambda _hint: False)
    except TypeError:
        return None, None, None  # not expressible: the tool still works, it just advertises no schema
    if schema.get("type") == "object":
        return schema, False, check
    wrapped = {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return wrapped, True, check


def _mentions_content(hint: Any) -> bool:
    """Whether a return hint may stand for content rather than data: ``TextContent``,
    ``list[TextContent | Image]``, and untyped ones (``Any``, ``list``, ``list[object]``).

    A schema promising structured content the tool then does not send makes clients reject the
    whole result, so all of these get no output schema. (``dict[str, Any]`` is data: a dict is never
    content.)
    """
    if hint is Any or hint is object or hint in (list, tuple):
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _mentions_content(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_mentions_content(arg) for arg in args)
    if origin in (list, tuple, Sequence):
        return any(arg is Any or arg is object or _names_content(arg) for arg in args)
    return _names_content(hint)


def _names_content(hint: Any) -> bool:
    if isinstance(hint, type):
        return issubclass(hint, _CONTENT_HINTS)
    return any(_names_content(arg) for arg in typing.get_args(hint))


def make_tool(
    fn: Any,
    *,
    name: str,
    title: str | None,
    description: str | None,
    annotations: Any,
    output_schema: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    icons: Any,
    input_schema: Mapping[str, Any] | None = None,
    task: str | bool | None = None,
    required_scopes: Iterable[str] | None = None,
    inline: bool = False,
) -> RegisteredTool:
    task_support = _task_support(task, name)
    handler = Handler.wrap(fn, f"tool {name!r}", inline=inline)
    signature: ToolSignature | SchemaArguments = (
        ToolSignature.from_function(fn, exclude={Context})
        if input_schema is None
        else SchemaArguments.build(input_schema, handler)
    )
    schema, wrap, check = output_schema_for(handler.return_hint)
    if output_schema is not None:
        schema, check = dict(output_schema), None
        wrap = schema.get("type") != "object"
    tool = Tool(
        name=name,
        input_schema=signature.input_schema,
        title=title,
        description=description,
        output_schema=schema,
        annotations=annotations,
        icons=icons,
        meta=meta,
        execution=None if task_support == "forbidden" else {"taskSupport": task_support},
    )
    handle_param = handle_parameter(fn, f"tool {name!r}") if input_schema is None else None
    scopes = tuple(dict.fromkeys(required_scopes or ()))
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(c in scope for c in ' "\\'):
            raise ValueError(f"tool {name!r}: required scope {scope!r} is not an OAuth scope token")
    return RegisteredTool(tool, signature, handler, wrap, check, handle_param, task_support, scopes)


def _task_support(task: str | bool | None, name: str) -> str:
    """The decorator's ``task=``: True means ``optional``, False/None ``forbidden``."""
    if task is None or task is False:
        return "forbidden"
    if task is True:
        return "optional"
    if task not in TASK_SUPPORT_VALUES:
        raise ValueError(
            f"tool {name!r}: task={task!r} is not one of {', '.join(TASK_SUPPORT_VALUES)} (or True/False)"
        )
    return task


def _as_content(item: Any) -> ContentBlock | None:
    if isinstance(item, CONTENT_TYPES):
        return item
    if isinstance(item, Image | Audio):
        return item.to_content()
    return None


def tool_result(value: Any, wrap: bool | None, check: OutputCheck | None = None) -> CallToolResult:
    """The ``CallToolResult`` for what a tool returned (see the module docstring).

    ``check`` holds the value to the advertised output schema: the spec says structured content MUST
    conform, and a client that validates would reject the whole result, so a mismatch is the tool's bug
    (TypeError, answered -32603 and logged with the path that is wrong).
    """
    if isinstance(value, CallToolResult):
        return value
    if wrap is None:
        # No output schema: a string is text and None is nothing. With a schema (``-> str | int``,
        # ``-> list[str] | None``) they are structured like any value, or clients reject the result.
        if value is None:
            return CallToolResult()
        if isinstance(value, str):
            return CallToolResult([TextContent(value)])
    single = _as_content(value)
    if single is not None:
        return CallToolResult([single])
    if isinstance(value, list | tuple) and value:
        blocks = [_as_content(item) for item in value]
        if any(b is not None for b in blocks) and all(
            b is not None or isinstance(item, str) for b, item in zip(blocks, value, strict=True)
        ):
            return CallToolResult(
                [b if b is not None else TextContent(item) for b, item in zip(blocks, value, strict=True)]
            )
    data = _values.unstructure(value)
    if check is not None:
        try:
            check(data)
        except _Invalid as exc:
            where = "".join(f"[{part!r}]" for part in exc.path) or "the value"
            raise TypeError(
                f"tool returned a value that breaks its output schema at {where}: {exc.problem}"
            ) from None
    if wrap is None:
        wrap = not isinstance(data, dict)
    structured = {"result": data} if wrap else data
    if not isinstance(structured, dict):
        raise TypeError(f"a tool declared to return an object returned {type(value).__qualname__}")
    text = value if isinstance(value, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult([TextContent(text)], structured_content=structured)


def error_result(message: str) -> CallToolResult:
    """A tool execution error: the model sees ``message`` and may try again."""
    return CallToolResult([TextContent(message)], is_error=True)
