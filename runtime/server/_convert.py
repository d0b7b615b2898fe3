"""Strings to typed values, for the arguments that arrive as strings: prompt arguments, URI variables.

Prompt arguments are ``{name: string}`` on the wire and URI template variables are text, so a handler
declaring ``user_id: int`` wants the string converted by its hint. Only hints a string can sensibly
stand for are accepted, and the check happens at registration, not on the first request.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, TypeAlias

from ..protocol import ArgumentError

StringConverter: TypeAlias = Callable[[str, str], Any]
"""(argument name, text) -> value; raises ``ArgumentError`` naming the argument."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def string_converter(hint: Any, where: str) -> StringConverter:
    """The converter for ``hint``; TypeError (mentioning ``where``) for a hint a string cannot fill."""
    if hint is inspect.Parameter.empty or hint is Any or hint is str or hint is object:
        return lambda name, text: text
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return string_converter(typing.get_args(hint)[0], where)
    if origin is typing.Union or origin is types.UnionType:
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(arms) == 1:
            return string_converter(arms[0], where)
    if hint is int:
        return _parse_int
    if hint is float:
        return _parse_float
    if hint is bool:
        return _parse_bool
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_parser(hint)
    if origin is typing.Literal:
        return _literal_parser(typing.get_args(hint))
    raise TypeError(
        f"{where}: arguments arrive as strings, so the hint must be str, int, float, bool, an Enum or a "
        f"Literal (optionally Optional/Annotated), not {hint!r}"
    )


def _parse_int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ArgumentError(name, f"expected an integer, got {text!r}") from None


def _parse_float(name: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ArgumentError(name, f"expected a number, got {text!r}") from None


def _parse_bool(name: str, text: str) -> bool:
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ArgumentError(name, f"expected true or false, got {text!r}")


def _enum_parser(cls: type[enum.Enum]) -> StringConverter:
    by_text = {str(member.value): member for member in cls}

    def parse(name: str, text: str) -> Any:
        member = by_text.get(text)
        if member is None:
            raise ArgumentError(name, f"expected one of {', '.join(by_text)}, got {text!r}")
        return member

    return parse


def _literal_parser(values: tuple[Any, ...]) -> StringConverter:
    by_text = {str(v).lower() if isinstance(v, bool) else str(v): v for v in values}

    def parse(name: str, text: str) -> Any:
        if text not in by_text:
            raise ArgumentError(name, f"expected one of {', '.join(by_text)}, got {text!r}")
        return by_text[text]

    return parse
