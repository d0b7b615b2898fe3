"""Tools registered with a hand-written ``input_schema=``: the schema advertised verbatim, arguments bound.

A hand-written schema can say what Python hints cannot (``$defs``/``$ref``, ``allOf``/``anyOf``,
``if``/``then``/``else``, ``x-mcp-header`` annotations, a 2020-12 ``$schema``), so it is advertised as
given, key for key. The server checks only what any such schema makes unambiguous, so a bad call gets
the same ``ArgumentError`` (field named) as a hinted tool:

- the top-level ``required`` names are present;
- a top-level property whose schema has a plain ``type`` (a name or a list of names) has that JSON type;
- with ``additionalProperties: false`` (and no ``patternProperties``) no other names are sent.

Everything else (``$ref`` targets, composition, conditionals, formats, nested objects) is the
handler's to enforce: jsonschema is not a dependency, and a partial evaluator of those keywords would
accept or refuse calls differently from the client's validator, which is worse than not pretending.

The arguments reach the handler as keyword arguments, one per top-level name, so the handler's
parameters read like any tool's; a handler that takes ``**arguments`` receives every name, including
those that are not Python identifiers (``"x-trace"``). Without ``**``, a name that is not a parameter
is refused, and a parameter without a default must be sent.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ..protocol import ArgumentError
from ._handler import Handler

_JSON_TYPES: Final = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if name == "integer":
        return isinstance(value, int) or (math.isfinite(value) and value == int(value))
    return True  # "number"


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__qualname__


#: RFC 9110 token characters: what may follow ``Mcp-Param-`` in a header name.
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_TYPES: Final = frozenset({"string", "integer", "number", "boolean"})


def _check_header_annotations(properties: Mapping[str, Any], label: str) -> None:
    """``x-mcp-header`` (SEP-2243) names an HTTP header: a token, unique ignoring case, on a primitive
    top-level property (a header carries one scalar). Wrong ones fail at registration, not per call."""
    seen: dict[str, str] = {}
    for prop, sub in properties.items():
        name = sub.get("x-mcp-header") if isinstance(sub, Mapping) else None
        if name is None:
            continue
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"{label}: x-mcp-header of {prop!r} must be an HTTP token, not {name!r}")
        if sub.get("type") not in _HEADER_TYPES:
            raise ValueError(
                f"{label}: x-mcp-header on {prop!r} needs a string, integer, number or boolean property"
            )
        other = seen.setdefault(name.lower(), prop)
        if other != prop:
            raise ValueError(f"{label}: {prop!r} and {other!r} both use the header Mcp-Param-{name}")


@attrs.frozen
class SchemaArguments:
    """The ``input_schema`` to advertise and ``bind`` to turn a call's arguments into keyword arguments.

    Quacks like ``ToolSignature`` (``input_schema``, ``bind``), which is all dispatch needs.
    """

    input_schema: dict[str, Any]
    required: tuple[str, ...]
    #: Top-level property name -> the JSON type names its schema allows (only plain ``type`` keywords).
    types: Mapping[str, tuple[str, ...]]
    #: Names allowed when ``additionalProperties`` is false (None: any).
    closed: frozenset[str] | None
    #: The handler's parameters that arguments may fill (None: it takes ``**kwargs``, so any name).
    parameters: frozenset[str] | None
    #: Parameters with no default, which a call must therefore send.
    needed: tuple[str, ...]

    @classmethod
    def build(cls, schema: Mapping[str, Any], handler: Handler) -> SchemaArguments:
        """Check ``schema`` is an object schema and fits ``handler``; ValueError/TypeError otherwise."""
        if not isinstance(schema, Mapping):
            raise TypeError(f"{handler.label}: input_schema must be a JSON Schema object (a dict)")
        if schema.get("type") != "object":
            raise ValueError(
                f'{handler.label}: input_schema must have "type": "object" (the spec requires it)'
            )
        own = copy.deepcopy(dict(schema))
        properties = own.get("properties", {})
        if not isinstance(properties, Mapping):
            raise TypeError(f"{handler.label}: input_schema.properties must be an object")
        required = own.get("required", [])
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            raise TypeError(f"{handler.label}: input_schema.required must be a list of names")
        types: dict[str, tuple[str, ...]] = {}
        for prop, sub in properties.items():
            declared = sub.get("type") if isinstance(sub, Mapping) else None
            names = (declared,) if isinstance(declared, str) else declared
            if isinstance(names, list | tuple) and names and all(n in _JSON_TYPES for n in names):
                types[prop] = tuple(names)
        _check_header_annotations(properties, handler.label)
        closed = (
            frozenset(properties)
            if own.get("additionalProperties") is False and "patternProperties" not in own
            else None
        )
        params = handler.user_parameters()
        if any(p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY) for p in params):
            raise TypeError(f"{handler.label}: tools take keyword arguments only")
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        names_ = frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)
        needed = tuple(
            p.name for p in params if p.kind is not p.VAR_KEYWORD and p.default is inspect.Parameter.empty
        )
        return cls(own, tuple(required), types, closed, None if takes_any else names_, needed)

    def bind(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """The keyword arguments for the handler; ``ArgumentError`` naming the field when they do not fit."""
        values = dict(arguments) if arguments is not None else {}
        for name in self.required:
            if name not in values:
                raise ArgumentError(name, "required argument is missing")
        for name, value in values.items():
            if self.closed is not None and name not in self.closed:
                raise ArgumentError(name, "unexpected argument")
            allowed = self.types.get(name)
            if allowed is not None and not any(_is_type(value, t) for t in allowed):
                raise ArgumentError(name, f"expected {' or '.join(allowed)}, got {_type_name(value)}")
            if self.parameters is not None and name not in self.parameters:
                raise ArgumentError(name, "unexpected argument")
        for name in self.needed:
            if name not in values:
                raise ArgumentError(name, "required argument is missing")
        return values
