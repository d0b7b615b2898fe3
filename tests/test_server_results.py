"""Properties of the conversions between handler values and the wire."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import ArgumentError, CallToolResult, from_wire, to_wire
from mcpvisor.runtime.server._convert import string_converter
from mcpvisor.runtime.server._tools import tool_result

json_leaves = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_leaves | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.sampled_from([None, True, False]))
def test_structured_values_round_trip_through_the_wire(value: Any, wrap: bool | None) -> None:
    if wrap is False and not isinstance(value, dict):
        wrap = None  # an object schema with a non-object value is the tool's bug (next test)
    result = tool_result(value, wrap)
    wire = to_wire(result)
    assert from_wire(json.loads(json.dumps(wire)), CallToolResult) == result
    if wrap is None and (value is None or isinstance(value, str)):
        assert result.structured_content is None
        return
    structured = result.structured_content
    assert isinstance(structured, dict)  # the spec requires an object
    unwrapped = (
        structured if (wrap is False or (wrap is None and isinstance(value, dict))) else structured["result"]
    )
    assert unwrapped == value
    text = result.content[0].text  # type: ignore[union-attr]
    assert (text if isinstance(value, str) else json.loads(text)) == value


def test_a_non_object_where_the_schema_promised_one_is_an_error() -> None:
    try:
        tool_result([1], wrap=False)
    except TypeError as exc:
        assert "declared to return an object" in str(exc)
    else:
        raise AssertionError("a list passed as an object")


@given(st.integers())
def test_int_arguments_parse_back(number: int) -> None:
    assert string_converter(int, "test")("n", str(number)) == number


@given(st.floats(allow_nan=False))
def test_float_arguments_parse_back(number: float) -> None:
    parsed = string_converter(float, "test")("x", repr(number))
    assert parsed == number or (math.isinf(parsed) and math.isinf(number))


@given(st.text().filter(lambda s: s.strip().lstrip("+-").replace("_", "").isdigit() is False))
def test_non_numbers_are_argument_errors_naming_the_field(text: str) -> None:
    try:
        string_converter(int, "test")("count", text)
    except ArgumentError as exc:
        assert exc.field == "count" and exc.code == -32602
    else:
        raise AssertionError(f"{text!r} parsed as an int")


def test_the_facade_re_exports_the_server_api_names() -> None:
    from mcpvisor.runtime import server

    import mcpvisor

    for name in (
        "Audio",
        "Completion",
        "Image",
        "InputRequired",
        "MissingClientCapability",
        "Server",
        "Context",
    ):
        assert getattr(mcpvisor, name) is getattr(server, name)
        assert name in mcpvisor.__all__
