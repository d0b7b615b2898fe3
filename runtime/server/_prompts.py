"""Registered prompts: arguments from the handler's signature, and results from what it returns.

Prompt arguments arrive as strings; a parameter's hint converts them (``count: int``), a parameter with
no default is ``required``. A handler returns a string (one user message), a list of ``PromptMessage`` /
``(role, text-or-content)`` pairs / strings, or a whole ``GetPromptResult``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..protocol import ArgumentError, GetPromptResult, Prompt, PromptArgument, PromptMessage, TextContent
from ._convert import StringConverter, string_converter
from ._handler import Handler
from ._tools import _as_content


@attrs.frozen
class RegisteredPrompt:
    prompt: Prompt
    handler: Handler
    converters: Mapping[str, StringConverter]
    required: frozenset[str]


def make_prompt(
    fn: Callable[..., Any], *, name: str, title: str | None, description: str | None, icons: Any
) -> RegisteredPrompt:
    label = f"prompt {name!r}"
    handler = Handler.wrap(fn, label)
    arguments: list[PromptArgument] = []
    converters: dict[str, StringConverter] = {}
    required: set[str] = set()
    for param in handler.user_parameters():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{label}: parameter {param.name!r}: prompts take keyword arguments only")
        hint = handler.hints.get(param.name, param.annotation)
        converters[param.name] = string_converter(hint, f"{label}, parameter {param.name!r}")
        is_required = param.default is param.empty
        if is_required:
            required.add(param.name)
        arguments.append(PromptArgument(param.name, description=_description(hint), required=is_required))
    prompt = Prompt(name, title=title, description=description, arguments=arguments or None, icons=icons)
    return RegisteredPrompt(prompt, handler, converters, frozenset(required))


def _description(hint: Any) -> str | None:
    if typing.get_origin(hint) is typing.Annotated:
        texts = [a for a in typing.get_args(hint)[1:] if isinstance(a, str)]
        return " ".join(texts) or None
    return None


def bind_prompt(prompt: RegisteredPrompt, arguments: Any) -> dict[str, Any]:
    """Check and convert ``prompts/get`` arguments; raises ``ArgumentError`` (-32602) naming the field."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ArgumentError(None, "prompt arguments must be an object of strings")
    for key in arguments:
        if key not in prompt.converters:
            raise ArgumentError(key, "unexpected argument")
    missing = sorted(prompt.required - set(arguments))
    if missing:
        raise ArgumentError(missing[0], "required argument is missing")
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if not isinstance(value, str):
            raise ArgumentError(key, f"prompt arguments are strings, got {type(value).__name__}")
        out[key] = prompt.converters[key](key, value)
    return out


def prompt_result(value: Any, description: str | None) -> GetPromptResult:
    """The ``GetPromptResult`` for what a prompt handler returned."""
    if isinstance(value, GetPromptResult):
        return value
    items = [value] if isinstance(value, str | PromptMessage | tuple) else value
    if not isinstance(items, list):
        raise TypeError(f"a prompt handler returned {type(value).__qualname__}; return str or messages")
    return GetPromptResult([_message(item) for item in items], description=description)


def _message(item: Any) -> PromptMessage:
    if isinstance(item, PromptMessage):
        return item
    if isinstance(item, str):
        return PromptMessage("user", TextContent(item))
    if isinstance(item, tuple) and len(item) == 2 and item[0] in ("user", "assistant"):
        role, content = item
        block = TextContent(content) if isinstance(content, str) else _as_content(content)
        if block is not None:
            return PromptMessage(role, block)
    raise TypeError(f"cannot make a prompt message of {item!r}")
