"""Tool input schemas from type hints (exact dicts), and argument binding errors that name the field."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Optional, Union

import attrs
import pytest
from mcpvisor.runtime.protocol import (
    INVALID_PARAMS,
    ArgumentError,
    JsonRpcError,
    ToolSignature,
    bind_arguments,
    schema_for_function,
)


class Context:
    """Stands in for the runtime's Context marker type."""


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    x: float
    y: float = 0.0


@attrs.frozen
class Shape:
    name: str
    points: list[Point]


def prop(annotation: Any) -> dict[str, Any]:
    """The schema of one required parameter `v` annotated with `annotation`."""

    def fn(v: Any) -> None: ...

    fn.__annotations__ = {"v": annotation}
    schema = schema_for_function(fn)
    assert schema["required"] == ["v"]
    assert schema["additionalProperties"] is False
    result: dict[str, Any] = schema["properties"]["v"]
    return result


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (list, {"type": "array"}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Mapping[str, bool], {"type": "object", "additionalProperties": {"type": "boolean"}}),
        (dict, {"type": "object"}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (
            Point,
            {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
                "required": ["x"],
                "additionalProperties": False,
            },
        ),
        (
            Shape,
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "points": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
                            "required": ["x"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["name", "points"],
                "additionalProperties": False,
            },
        ),
        (Annotated[int, "how many"], {"type": "integer", "description": "how many"}),
        (list[Literal["x"]], {"type": "array", "items": {"type": "string", "enum": ["x"]}}),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else "",
)
def test_schema_for_each_hint(hint: Any, expected: dict[str, Any]) -> None:
    assert prop(hint) == expected


def test_full_function_schema_with_defaults_and_context_excluded() -> None:
    def tool(
        ctx: Context, name: str, count: int = 3, color: Color = Color.RED, tags: list[str] | None = None
    ) -> str:
        return name

    assert schema_for_function(tool, exclude={Context}) == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "default": 3},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "tags": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }


def test_no_parameters() -> None:
    def tool() -> None: ...

    assert schema_for_function(tool) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_unrepresentable_default_is_not_shown_but_still_optional() -> None:
    def tool(items: list[int] = [1], point: Point | None = None) -> None: ...  # noqa: B006

    schema = schema_for_function(tool)
    assert schema["properties"]["items"] == {"type": "array", "items": {"type": "integer"}}
    assert "required" not in schema


def test_exclude_by_predicate_and_optional_context() -> None:
    def tool(a: int, ctx: Context | None = None) -> None: ...

    sig = ToolSignature.from_function(tool, exclude=lambda hint: hint == Context | None)
    assert sig.excluded == ("ctx",)
    assert list(sig.input_schema["properties"]) == ["a"]
    sig2 = ToolSignature.from_function(tool, exclude=[Context])
    assert sig2.excluded == ("ctx",)


def test_string_annotations_resolve() -> None:
    # This module uses `from __future__ import annotations`, so every hint above was a string already.
    def tool(p: Point) -> None: ...

    assert tool.__annotations__["p"] == "Point"
    assert prop(Point)["required"] == ["x"]
    assert schema_for_function(tool)["properties"]["p"]["type"] == "object"


@pytest.mark.parametrize("hint", [set[int], dict[int, str], tuple[int, int], complex, Literal[1.5]])
def test_unsupported_hints_raise_type_error(hint: Any) -> None:
    with pytest.raises(TypeError):
        prop(hint)


def test_var_args_rejected() -> None:
    def tool(*args: int) -> None: ...

    def tool2(**kwargs: int) -> None: ...

    for fn in (tool, tool2):
        with pytest.raises(TypeError, match="keyword arguments only"):
            schema_for_function(fn)


# --- binding ---------------------------------------------------------------------------------------------


def full(
    ctx: Context,
    name: str,
    count: int,
    ratio: float = 1.0,
    flag: bool = False,
    tags: list[str] | None = None,
    opts: dict[str, int] | None = None,
    mode: Literal["a", "b"] = "a",
    color: Color = Color.RED,
    level: Level = Level.LOW,
    point: Point | None = None,
    shape: Shape | None = None,
    anything: Any = None,
    either: int | str = 0,
) -> None: ...


SIG = ToolSignature.from_function(full, exclude={Context})
OK: dict[str, Any] = {"name": "n", "count": 1}


def test_bind_converts_enums_attrs_and_numbers() -> None:
    bound = SIG.bind(
        {
            "name": "n",
            "count": 2.0,
            "ratio": 3,
            "color": "blue",
            "level": 2,
            "point": {"x": 1},
            "shape": {"name": "s", "points": [{"x": 1, "y": 2}]},
            "anything": {"k": [1]},
            "either": "text",
        }
    )
    assert bound == {
        "name": "n",
        "count": 2,
        "ratio": 3.0,
        "color": Color.BLUE,
        "level": Level.HIGH,
        "point": Point(1.0, 0.0),
        "shape": Shape("s", [Point(1.0, 2.0)]),
        "anything": {"k": [1]},
        "either": "text",
    }
    assert isinstance(bound["count"], int)
    assert isinstance(bound["ratio"], float)
    assert "ctx" not in bound
    assert SIG.excluded == ("ctx",)


def test_bind_omits_absent_optionals_so_defaults_apply() -> None:
    assert SIG.bind({"name": "n", "count": 1}) == {"name": "n", "count": 1}


@pytest.mark.parametrize(
    ("arguments", "message", "field"),
    [
        ({"name": "n", "count": "abc"}, "argument 'count': expected integer, got 'abc'", "count"),
        ({"name": "n", "count": 1.5}, "argument 'count': expected integer, got 1.5", "count"),
        ({"name": "n", "count": True}, "argument 'count': expected integer, got true", "count"),
        ({"name": "n"}, "argument 'count': required argument is missing", "count"),
        ({"name": 1, "count": 1}, "argument 'name': expected string, got 1", "name"),
        ({**OK, "ratio": "x"}, "argument 'ratio': expected number, got 'x'", "ratio"),
        ({**OK, "flag": 1}, "argument 'flag': expected boolean, got 1", "flag"),
        ({**OK, "tags": "a"}, "argument 'tags': expected array, got 'a'", "tags"),
        (
            {**OK, "tags": ["a", 2]},
            "argument 'tags[1]': expected string, got 2",
            "tags[1]",
        ),
        (
            {**OK, "opts": {"k": "v"}},
            "argument 'opts.k': expected integer, got 'v'",
            "opts.k",
        ),
        ({**OK, "opts": []}, "argument 'opts': expected object, got array", "opts"),
        (
            {**OK, "mode": "c"},
            "argument 'mode': expected one of 'a', 'b', got 'c'",
            "mode",
        ),
        (
            {**OK, "color": "green"},
            "argument 'color': expected one of 'red', 'blue', got 'green'",
            "color",
        ),
        ({**OK, "level": "1"}, "argument 'level': expected one of 1, 2, got '1'", "level"),
        (
            {**OK, "point": {"y": 1}},
            "argument 'point.x': required argument is missing",
            "point.x",
        ),
        (
            {**OK, "point": {"x": 1, "z": 0}},
            "argument 'point.z': unexpected argument",
            "point.z",
        ),
        (
            {**OK, "shape": {"name": "s", "points": [{"x": 1}, {"x": "q"}]}},
            "argument 'shape.points[1].x': expected number, got 'q'",
            "shape.points[1].x",
        ),
        (
            {**OK, "either": 1.5},
            "argument 'either': does not match any of the allowed types, got 1.5",
            "either",
        ),
        ({**OK, "extra": 1}, "argument 'extra': unexpected argument", "extra"),
        ({**OK, "ctx": 1}, "argument 'ctx': unexpected argument", "ctx"),
    ],
)
def test_bind_errors_name_the_field(arguments: dict[str, Any], message: str, field: str) -> None:
    with pytest.raises(ArgumentError) as info:
        SIG.bind(arguments)
    assert info.value.message == message
    assert info.value.field == field
    assert info.value.code == INVALID_PARAMS
    assert info.value.data == {"field": field}
    assert isinstance(info.value, JsonRpcError)


def test_literal_distinguishes_true_from_1() -> None:
    def tool(v: Literal[1, 2]) -> None: ...

    with pytest.raises(ArgumentError):
        bind_arguments(tool, {"v": True})
    assert bind_arguments(tool, {"v": 1}) == {"v": 1}


def test_bind_none_arguments_means_empty() -> None:
    def tool(a: int = 1) -> None: ...

    assert bind_arguments(tool, None) == {}


def test_optional_error_message_is_the_inner_types() -> None:
    def tool(v: int | None) -> None: ...

    with pytest.raises(ArgumentError, match=r"^argument 'v': expected integer, got 'x'$"):
        bind_arguments(tool, {"v": "x"})
    assert bind_arguments(tool, {"v": None}) == {"v": None}
