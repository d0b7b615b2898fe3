"""The one cattrs converter between MCP records and their camelCase JSON wire form.

Unstructuring drops None members (the wire omits absent optionals), turns tuples into lists and adds the
`type` discriminator of content blocks. Structuring renames camelCase keys back, picks the content-block
class from `type` and the resource-contents class from `text`/`blob`, and ignores unknown keys so a newer
peer's additions never break an older reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.strategies import configure_union_passthrough

from ._records import (
    AudioContent,
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceContents,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

T = TypeVar("T")

_CAMEL = re.compile(r"_([a-z])")


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The JSON key of an attrs field: its `wire` metadata, else the camelCase of its name."""
    explicit = field.metadata.get("wire")
    if explicit is not None:
        return str(explicit)
    return _CAMEL.sub(lambda m: m.group(1).upper(), field.name)


converter = cattrs.Converter()
"""The converter; `to_wire`/`from_wire` are the usual entry points."""


def _unstructure_attrs_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    fields = tuple((f.name, wire_name(f)) for f in attrs.fields(cls))
    tag: str | None = getattr(cls, "WIRE_TYPE", None)
    dump = converter.unstructure

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"type": tag} if tag is not None else {}
        for name, key in fields:
            value = getattr(obj, name)
            if value is not None:
                out[key] = dump(value)
        return out

    return unstructure


def _structure_attrs_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    renames = {f.name: override(rename=wire_name(f)) for f in attrs.fields(cls)}
    structure = make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]

    def structure_object(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"{cls.__name__} must be an object, got {type(value).__name__}")
        return structure(value, type_)

    return structure_object


def _strict(kind: type[Any]) -> Callable[[Any, Any], Any]:
    """cattrs coerces (`str(5)`, `bool("no")`); a peer's JSON must already have the right type."""

    def structure(value: Any, _: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _unstructure_sequence(value: tuple[Any, ...] | list[Any]) -> list[Any]:
    return [converter.unstructure(item) for item in value]


def _unstructure_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: converter.unstructure(item) for key, item in value.items()}


_CONTENT_CLASSES: dict[str, type[Any]] = {
    cls.WIRE_TYPE: cls for cls in (TextContent, ImageContent, AudioContent, ResourceLink, EmbeddedResource)
}


def _structure_content(value: Any, _: Any) -> ContentBlock:
    if not isinstance(value, Mapping):
        raise TypeError(f"content block must be an object, got {type(value).__name__}")
    tag = value.get("type")
    cls = _CONTENT_CLASSES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ValueError(f"unknown content block type {value.get('type')!r}")
    result: ContentBlock = converter.structure(value, cls)
    return result


def _structure_resource_contents(value: Any, _: Any) -> ResourceContents:
    if isinstance(value, Mapping) and "blob" in value:
        return converter.structure(value, BlobResourceContents)
    return converter.structure(value, TextResourceContents)


def _structure_any(value: Any, _: Any) -> Any:
    return value


converter.register_unstructure_hook_factory(attrs.has, _unstructure_attrs_factory)
converter.register_structure_hook_factory(attrs.has, _structure_attrs_factory)
converter.register_unstructure_hook(tuple, _unstructure_sequence)
converter.register_unstructure_hook(list, _unstructure_sequence)
converter.register_unstructure_hook(dict, _unstructure_mapping)
converter.register_structure_hook(ContentBlock, _structure_content)
converter.register_structure_hook(ResourceContents, _structure_resource_contents)
converter.register_structure_hook(Any, _structure_any)
for _kind in (str, int, float, bool):
    converter.register_structure_hook(_kind, _strict(_kind))
# Unions of JSON scalars (`str | int` request ids, progress tokens) pass through when the value's type fits.
configure_union_passthrough(str | int | float | bool | None, converter)


def to_wire(record: Any) -> Any:
    """The JSON-ready wire form of a record (or of lists/dicts of records)."""
    return converter.unstructure(record)


def from_wire(data: Any, cls: type[T]) -> T:
    """Build `cls` from its wire form; raises a cattrs validation error (or ValueError) if it does not fit."""
    return converter.structure(data, cls)
