"""The codec: hypothesis round-trips of arbitrary nested values, registered attrs classes, errors."""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.backends import Codec, TaskRecord, TaskStatus, decode_task_record, encode_task_record


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Point:
    x: int
    y: float
    colour: Colour = Colour.RED


@attrs.frozen
class Shape:
    name: str
    points: tuple[Point, ...]
    extra: object = None


codec = Codec()
codec.register(Point)
codec.register(Shape, name="test.Shape")


def same(a: Any, b: Any) -> bool:
    """Equality where nan == nan, -0.0 != 0.0, and a tuple equals the list it comes back as."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if attrs.has(type(a)):
        return type(a) is type(b) and all(
            same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(a)
        )
    return type(a) is type(b) and bool(a == b)


points = st.builds(Point, st.integers(), st.floats(), st.sampled_from(Colour))
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()
    | st.text()
    | st.binary()
    | points
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4)
        | st.builds(Shape, st.text(max_size=5), st.lists(points, max_size=3).map(tuple), children)
    ),
    max_leaves=20,
)


@settings(max_examples=200)
@given(values)
def test_round_trip(value: Any) -> None:
    decoded = codec.decode(codec.encode(value))
    assert same(value, decoded), (value, decoded)


@given(st.integers(min_value=-(2**300), max_value=2**300))
def test_ints_of_any_size_round_trip_exactly(n: int) -> None:
    assert codec.decode(codec.encode(n)) == n


def test_64_bit_ints_stay_native_msgpack() -> None:
    assert codec.encode(2**64 - 1) == b"\xcf" + b"\xff" * 8
    assert codec.encode(-(2**63))[0] == 0xD3
    assert codec.encode(2**64)[0] in (0xC7, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8)  # an ext type


def test_tuples_come_back_as_lists_but_typed_fields_as_tuples() -> None:
    assert codec.decode(codec.encode((1, 2))) == [1, 2]
    shape = Shape("s", (Point(1, 2.0),))
    assert codec.decode(codec.encode(shape)) == shape


def test_nested_registered_instance_in_an_object_field_keeps_its_class() -> None:
    value = Shape("outer", (), extra=[Point(3, 4.5, Colour.BLUE)])
    decoded = codec.decode(codec.encode(value))
    assert decoded.extra == [Point(3, 4.5, Colour.BLUE)]


def test_unserializable_value_names_the_key_and_path() -> None:
    with pytest.raises(TypeError, match=r"key 'cart'.* at \['items'\]\[1\]: set is not supported"):
        codec.encode({"items": [1, {2}]}, key="cart")


def test_unregistered_attrs_class_says_to_register() -> None:
    @attrs.frozen
    class Unregistered:
        x: int = 1

    with pytest.raises(TypeError, match="Unregistered is not supported") as info:
        codec.encode([Unregistered()], key="k")
    assert "register" in str(info.value.__cause__)


def test_bad_field_inside_registered_class_is_located() -> None:
    with pytest.raises(TypeError, match=r"at \.extra: frozenset"):
        codec.encode(Shape("s", (), extra=frozenset()))


def test_register_rejects_non_attrs_and_name_clash() -> None:
    other = Codec()
    with pytest.raises(TypeError, match="not an attrs class"):
        other.register(dict)
    other.register(Point, name="p")
    with pytest.raises(ValueError, match="already registered"):
        other.register(Shape, name="p")


def test_decoding_an_unregistered_name_is_a_clear_error() -> None:
    data = codec.encode(Point(1, 2.0))
    with pytest.raises(ValueError, match="not registered with this codec"):
        Codec().decode(data)


@given(
    st.builds(
        TaskRecord,
        task_id=st.text(min_size=1),
        owner=st.text(),
        status=st.sampled_from(TaskStatus),
        status_message=st.none() | st.text(),
        progress=st.none() | st.floats(allow_nan=False),
        result=st.none() | st.binary(),
        created_at=st.floats(0, 2e9),
        ttl=st.none() | st.floats(0, 1e6),
        version=st.integers(0, 2**40),
    )
)
def test_task_record_blob_round_trip(record: TaskRecord) -> None:
    assert decode_task_record(encode_task_record(record)) == record
