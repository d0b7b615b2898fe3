"""Tool input schemas from Python type hints, and validation of JSON arguments against the same hints.

`ToolSignature.from_function` reads a function's hints once and compiles two things from them: the JSON
Schema a client sees (`inputSchema`) and a checker that turns a call's JSON arguments into Python values
(enum members, attrs instances). Both come from one walk over the hints, so what we advertise and what we
accept cannot drift apart. An error names the offending field: ``argument 'count': expected integer, got
'abc'``.

Supported hints: str, int, float, bool, None, Any, list[T] / Sequence[T], dict[str, T] / Mapping[str, T],
Optional / Union (anyOf), Literal (enum), enum.Enum subclasses, attrs classes (nested objects), and
`Annotated[T, "description"]`, and classes that describe themselves (a ``__json_schema__`` dict and a
``__from_json__`` classmethod raising ValueError for a value they refuse: the runtime's `StateHandle`).
Parameters whose annotation is an excluded type (the runtime's `Context`) are left out of the schema
and of binding.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from ._jsonrpc import INVALID_PARAMS, JsonRpcError

JsonSchema: TypeAlias = dict[str, Any]
ExcludePredicate: TypeAlias = Callable[[Any], bool]

_MISSING: Final = object()
_FACTORY: Final[type[Any]] = type(attrs.Factory(list))


class ArgumentError(JsonRpcError):
    """A tool/prompt argument does not fit its hint; `field` is the dotted path to it (None: the whole call).

    A JsonRpcError with -32602, so the runtime may answer it as a protocol error or turn `message` into
    a tool result with `isError: true`, whichever the spec asks for.
    """

    def __init__(self, field: str | None, problem: str) -> None:
        message = f"argument {field!r}: {problem}" if field is not None else problem
        super().__init__(INVALID_PARAMS, message, {"field": field} if field is not None else None)
        self.field = field
        self.problem = problem


class _Invalid(Exception):
    """Internal: raised by checkers with the path relative to the value being checked."""

    def __init__(self, problem: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


_Check: TypeAlias = Callable[[Any], Any]


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()  # as the client wrote it
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _got(value: Any) -> str:
    if isinstance(value, list | dict):
        return f"got {_json_type(value)}"
    return f"got {_show(value)}"


# --- compiling one hint ----------------------------------------------------------------------------------


def _compile(hint: Any, exclude: ExcludePredicate) -> tuple[JsonSchema, _Check]:
    """(schema, checker) for one hint; raises TypeError for hints we cannot express."""
    if hint is Any or hint is object or hint is inspect.Parameter.empty:
        return {}, _identity
    if hint is None or hint is type(None):
        return {"type": "null"}, _check_null
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        schema, check = _compile(base, exclude)
        descriptions = [e for e in extras if isinstance(e, str)]
        if descriptions:
            schema = {**schema, "description": " ".join(descriptions)}
        return schema, check
    if isinstance(hint, type) and isinstance(getattr(hint, "__json_schema__", None), Mapping):
        return _compile_self_described(hint)
    if hint is str:
        return {"type": "string"}, _check_str
    if hint is bool:
        return {"type": "boolean"}, _check_bool
    if hint is int:
        return {"type": "integer"}, _check_int
    if hint is float:
        return {"type": "number"}, _check_float
    if origin is typing.Literal:
        return _compile_literal(typing.get_args(hint))
    if origin is typing.Union or origin is types.UnionType:
        return _compile_union(typing.get_args(hint), exclude)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _compile_enum(hint)
    if isinstance(hint, type) and attrs.has(hint):
        return _compile_attrs(hint, exclude)
    if hint in (list, Sequence) or origin in (list, Sequence):
        args = typing.get_args(hint)
        return _compile_list(args[0] if args else Any, exclude)
    if hint in (dict, Mapping) or origin in (dict, Mapping):
        args = typing.get_args(hint)
        if args and args[0] is not str:
            raise TypeError(f"only str keys can be expressed in JSON, not {hint!r}")
        return _compile_dict(args[1] if args else Any, exclude)
    raise TypeError(f"cannot build a JSON Schema for the type hint {hint!r}")


def _compile_self_described(cls: type[Any]) -> tuple[JsonSchema, _Check]:
    """A class that says what it looks like in JSON and how to accept a value (``__from_json__``)."""
    schema = dict(cls.__json_schema__)
    convert = cls.__from_json__

    def check(value: Any) -> Any:
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None

    return schema, check


def _identity(value: Any) -> Any:
    return value


def _check_null(value: Any) -> Any:
    if value is not None:
        raise _Invalid(f"expected null, {_got(value)}")
    return None


def _check_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise _Invalid(f"expected string, {_got(value)}")
    return value


def _check_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, {_got(value)}")
    return value


def _check_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise _Invalid(f"expected integer, {_got(value)}")
    if isinstance(value, int):
        return value
    # JSON has one number type; 3.0 is an integer to JSON Schema too.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Invalid(f"expected integer, {_got(value)}")


def _check_float(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"expected number, {_got(value)}")
    return float(value)


def _compile_literal(values: tuple[Any, ...]) -> tuple[JsonSchema, _Check]:
    for v in values:
        if not (v is None or isinstance(v, str | int | bool)):
            raise TypeError(f"Literal values must be str, int, bool or None, not {v!r}")
    schema: JsonSchema = {"enum": list(values)}
    kinds = {_json_type(v) if not isinstance(v, int) or isinstance(v, bool) else "integer" for v in values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    allowed = list(values)

    def check(value: Any) -> Any:
        for candidate in allowed:
            # 1 == True in Python, not in JSON: compare types as well as values.
            if value == candidate and type(value) is type(candidate):
                return candidate
        raise _Invalid(f"expected one of {', '.join(map(_show, allowed))}, {_got(value)}")

    return schema, check


def _compile_enum(cls: type[enum.Enum]) -> tuple[JsonSchema, _Check]:
    members = list(cls)
    values = [m.value for m in members]
    for v in values:
        if not isinstance(v, str | int) or isinstance(v, bool):
            raise TypeError(f"enum {cls.__name__} must have str or int values to appear in a schema")
    kinds = {"string" if isinstance(v, str) else "integer" for v in values}
    schema: JsonSchema = {"enum": values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    by_value = {(type(m.value), m.value): m for m in members}

    def check(value: Any) -> Any:
        member = by_value.get((type(value), value)) if isinstance(value, str | int) else None
        if member is None:
            raise _Invalid(f"expected one of {', '.join(map(_show, values))}, {_got(value)}")
        return member

    return schema, check


def _compile_union(args: tuple[Any, ...], exclude: ExcludePredicate) -> tuple[JsonSchema, _Check]:
    compiled = [_compile(arg, exclude) for arg in args]
    schema: JsonSchema = {"anyOf": [s for s, _ in compiled]}
    checks = [c for _, c in compiled]
    nullable = any(arg is None or arg is type(None) for arg in args)
    arms = [c for c in checks if c is not _check_null]

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if len(arms) == 1:
            # Optional[T]: T's own complaint ("expected integer, got 'abc'") is the useful one.
            return arms[0](value)
        for candidate in arms:
            try:
                return candidate(value)
            except _Invalid:
                continue
        raise _Invalid(f"does not match any of the allowed types, {_got(value)}")

    return schema, check


def _compile_list(item: Any, exclude: ExcludePredicate) -> tuple[JsonSchema, _Check]:
    item_schema, item_check = _compile(item, exclude)
    schema: JsonSchema = {"type": "array", "items": item_schema} if item_schema else {"type": "array"}

    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise _Invalid(f"expected array, {_got(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item_check(element))
            except _Invalid as exc:
                raise _Invalid(exc.problem, (index, *exc.path)) from None
        return out

    return schema, check


def _compile_dict(value_hint: Any, exclude: ExcludePredicate) -> tuple[JsonSchema, _Check]:
    value_schema, value_check = _compile(value_hint, exclude)
    schema: JsonSchema = {"type": "object"}
    if value_schema:
        schema["additionalProperties"] = value_schema

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Invalid(f"expected object, {_got(value)}")
        out = {}
        for key, element in value.items():
            try:
                out[key] = value_check(element)
            except _Invalid as exc:
                raise _Invalid(exc.problem, (key, *exc.path)) from None
        return out

    return schema, check


def _json_default(value: Any) -> tuple[bool, Any]:
    """(representable, wire value) for a default, so the schema can show it."""
    if value is None or isinstance(value, str | int | float | bool):
        return True, value
    if isinstance(value, enum.Enum) and isinstance(value.value, str | int):
        return True, value.value
    return False, None


@attrs.frozen
class _FieldSpec:
    name: str
    required: bool
    check: _Check


def _object(
    specs: list[tuple[str, Any, Any]], exclude: ExcludePredicate
) -> tuple[JsonSchema, list[_FieldSpec]]:
    """Shared by functions and attrs classes: (name, hint, default-or-_MISSING) -> object schema."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    fields: list[_FieldSpec] = []
    for name, hint, default in specs:
        schema, check = _compile(hint, exclude)
        if default is _MISSING:
            required.append(name)
        else:
            representable, wire = _json_default(default)
            if representable:
                schema = {**schema, "default": wire}
        properties[name] = schema
        fields.append(_FieldSpec(name, default is _MISSING, check))
    schema_out: JsonSchema = {"type": "object", "properties": properties}
    if required:
        schema_out["required"] = required
    schema_out["additionalProperties"] = False
    return schema_out, fields


def _check_object(fields: list[_FieldSpec], value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"expected object, {_got(value)}")
    known = {f.name for f in fields}
    for key in value:
        if key not in known:
            raise _Invalid("unexpected argument", (key,))
    out: dict[str, Any] = {}
    for spec in fields:
        if spec.name not in value:
            if spec.required:
                raise _Invalid("required argument is missing", (spec.name,))
            continue
        try:
            out[spec.name] = spec.check(value[spec.name])
        except _Invalid as exc:
            raise _Invalid(exc.problem, (spec.name, *exc.path)) from None
    return out


def _compile_attrs(cls: type[Any], exclude: ExcludePredicate) -> tuple[JsonSchema, _Check]:
    hints = typing.get_type_hints(cls, include_extras=True)
    specs: list[tuple[str, Any, Any]] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        default: Any = _MISSING
        if field.default is not attrs.NOTHING:
            default = field.default.factory() if isinstance(field.default, _FACTORY) else field.default
        specs.append((field.alias or field.name, hints.get(field.name, Any), default))
    schema, fields = _object(specs, exclude)

    def check(value: Any) -> Any:
        return cls(**_check_object(fields, value))

    return schema, check


# --- functions -------------------------------------------------------------------------------------------


def hint_is(hint: Any, classes: tuple[type, ...]) -> bool:
    """Whether ``hint`` names one of ``classes`` (or a subclass): bare, in a union such as ``C | None``,
    or wrapped in ``Annotated[C, ...]``."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if isinstance(hint, type) and issubclass(hint, classes):
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(hint_is(arg, classes) for arg in typing.get_args(hint) if arg is not type(None))
    return False


def _excluder(exclude: ExcludePredicate | Collection[type] | None) -> ExcludePredicate:
    if exclude is None:
        return lambda hint: False
    if callable(exclude) and not isinstance(exclude, Collection):
        return exclude
    excluded = tuple(exclude)
    return lambda hint: hint_is(hint, excluded)


def _format_path(path: tuple[str | int, ...]) -> str | None:
    if not path:
        return None
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@attrs.frozen
class ToolSignature:
    """A function's parameters, compiled once: `input_schema` to advertise, `bind` to check a call.

    `excluded` names the parameters left out for the runtime to fill (its `Context`).
    """

    input_schema: JsonSchema
    excluded: tuple[str, ...]
    _fields: list[_FieldSpec] = attrs.field(repr=False)

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], *, exclude: ExcludePredicate | Collection[type] | None = None
    ) -> ToolSignature:
        """Read `fn`'s hints; raises TypeError for a parameter that cannot be expressed in JSON."""
        is_excluded = _excluder(exclude)
        hints = typing.get_type_hints(fn, include_extras=True)
        specs: list[tuple[str, Any, Any]] = []
        excluded: list[str] = []
        for param in inspect.signature(fn).parameters.values():
            hint = hints.get(param.name, Any)
            if is_excluded(hint):
                excluded.append(param.name)
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise TypeError(
                    f"parameter {param.name!r} of {fn.__qualname__}: tools take keyword arguments only"
                )
            default = _MISSING if param.default is param.empty else param.default
            specs.append((param.name, hint, default))
        schema, fields = _object(specs, is_excluded)
        return cls(schema, tuple(excluded), fields)

    def bind(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check JSON `arguments` and convert them to keyword arguments; raises `ArgumentError`."""
        try:
            return _check_object(self._fields, dict(arguments) if arguments is not None else {})
        except _Invalid as exc:
            raise ArgumentError(_format_path(exc.path), exc.problem) from None


def schema_for_function(
    fn: Callable[..., Any], *, exclude: ExcludePredicate | Collection[type] | None = None
) -> JsonSchema:
    """The JSON Schema (`inputSchema`) for `fn`'s parameters; see the module docstring for the rules."""
    return ToolSignature.from_function(fn, exclude=exclude).input_schema


def bind_arguments(
    fn: Callable[..., Any],
    arguments: Mapping[str, Any] | None,
    *,
    exclude: ExcludePredicate | Collection[type] | None = None,
) -> dict[str, Any]:
    """Validate and convert `arguments` for `fn` (compiles the hints on each call; a ToolSignature won't)."""
    return ToolSignature.from_function(fn, exclude=exclude).bind(arguments)
