"""Registered resources and resource templates, and turning handler values into `resources/read` results.

A handler returns ``str`` (text contents), ``bytes`` (base64 blob contents), a dict or list (JSON text,
``application/json`` unless a MIME type was given), a ``TextResourceContents`` / ``BlobResourceContents``
or a list of them, or a whole ``ReadResourceResult``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..protocol import (
    BlobResourceContents,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextResourceContents,
    UriTemplate,
)
from ._convert import StringConverter, string_converter
from ._handler import Handler


@attrs.frozen
class RegisteredResource:
    resource: Resource
    handler: Handler


@attrs.frozen
class RegisteredTemplate:
    template: ResourceTemplate
    parsed: UriTemplate
    handler: Handler
    #: Template variable -> converter to the handler parameter's hint.
    converters: Mapping[str, StringConverter]
    #: Variables the handler must receive (no default) -- query variables may be absent from a URI.
    required: frozenset[str]


def make_resource(fn: Callable[..., Any], resource: Resource) -> RegisteredResource:
    handler = Handler.wrap(fn, f"resource {resource.uri!r}")
    extra = [p.name for p in handler.user_parameters()]
    if extra:
        raise TypeError(
            f"resource {resource.uri!r}: a fixed resource's handler takes no arguments (only a Context), "
            f"but declares {', '.join(map(repr, extra))}; use @server.resource_template for parameters"
        )
    return RegisteredResource(resource, handler)


def make_template(fn: Callable[..., Any], template: ResourceTemplate) -> RegisteredTemplate:
    parsed = UriTemplate.parse(template.uri_template)
    label = f"resource template {template.uri_template!r}"
    handler = Handler.wrap(fn, label)
    params = {p.name: p for p in handler.user_parameters()}
    variables = set(parsed.variables)
    if set(params) != variables:
        raise TypeError(
            f"{label}: the handler's parameters {sorted(params)} must be exactly the template's "
            f"variables {sorted(variables)}"
        )
    converters = {
        name: string_converter(handler.hints.get(name, p.annotation), f"{label}, parameter {name!r}")
        for name, p in params.items()
    }
    required = frozenset(name for name, p in params.items() if p.default is p.empty)
    return RegisteredTemplate(template, parsed, handler, converters, required)


def read_result(uri: str, value: Any, mime_type: str | None) -> ReadResourceResult:
    """The ``ReadResourceResult`` for what a resource handler returned for ``uri``."""
    if isinstance(value, ReadResourceResult):
        return value
    if isinstance(value, TextResourceContents | BlobResourceContents):
        return ReadResourceResult([value])
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, TextResourceContents | BlobResourceContents) for v in value)
    ):
        return ReadResourceResult(value)
    if isinstance(value, str):
        return ReadResourceResult([TextResourceContents(uri, value, mime_type or "text/plain")])
    if isinstance(value, bytes | bytearray | memoryview):
        blob = base64.b64encode(bytes(value)).decode("ascii")
        return ReadResourceResult([BlobResourceContents(uri, blob, mime_type or "application/octet-stream")])
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return ReadResourceResult([TextResourceContents(uri, text, mime_type or "application/json")])
    raise TypeError(f"a resource handler returned {type(value).__qualname__}; return str, bytes or contents")
