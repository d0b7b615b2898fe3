"""MCP records as frozen attrs classes, in Python names; `_wire.py` maps them to the camelCase wire form.

Field names are snake_case here and camelCase on the wire by rule (`input_schema` <-> `inputSchema`);
the rare exception (`meta` <-> `_meta`) is spelled with `_wire_name`. Optional fields default to None and
are left out of the wire form, so a record says only what it means. Capability sub-objects whose shape
keeps growing between revisions (sampling, elicitation, experimental, extensions) stay plain dicts so
unknown keys survive a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import attrs

JsonObject: TypeAlias = Mapping[str, Any]
Role: TypeAlias = Literal["user", "assistant"]
LoggingLevel: TypeAlias = Literal[
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"
]
LOGGING_LEVELS: tuple[LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
"""Syslog severities, least severe first (RFC 5424 order reversed), as MCP uses them."""


def _wire_name(name: str) -> dict[str, str]:
    return {"wire": name}


def _tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _opt_tuple(value: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


# --- identity and capabilities ---------------------------------------------------------------------------


@attrs.frozen
class Icon:
    src: str
    mime_type: str | None = None
    sizes: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    theme: Literal["light", "dark"] | None = None


@attrs.frozen
class Implementation:
    """Who a peer is (`clientInfo` / `serverInfo`); for display and logs, never for decisions."""

    name: str
    version: str
    title: str | None = None
    description: str | None = None
    website_url: str | None = None
    icons: tuple[Icon, ...] | None = attrs.field(default=None, converter=_opt_tuple)


@attrs.frozen
class ToolsCapability:
    list_changed: bool | None = None


@attrs.frozen
class ResourcesCapability:
    subscribe: bool | None = None
    list_changed: bool | None = None


@attrs.frozen
class PromptsCapability:
    list_changed: bool | None = None


@attrs.frozen
class ServerCapabilities:
    """What this server offers; a feature is present when its member is not None (even if empty)."""

    tools: ToolsCapability | None = None
    resources: ResourcesCapability | None = None
    prompts: PromptsCapability | None = None
    logging: JsonObject | None = None
    completions: JsonObject | None = None
    experimental: JsonObject | None = None
    extensions: JsonObject | None = None
    #: 2025-11-25 tasks utility (``{"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}``)
    tasks: JsonObject | None = None


@attrs.frozen
class RootsCapability:
    list_changed: bool | None = None


@attrs.frozen
class ClientCapabilities:
    """What the client offers (negotiated once per session, or sent on every 2026-07-28 request)."""

    roots: RootsCapability | None = None
    sampling: JsonObject | None = None
    elicitation: JsonObject | None = None
    tasks: JsonObject | None = None
    experimental: JsonObject | None = None
    extensions: JsonObject | None = None


# --- content ---------------------------------------------------------------------------------------------


@attrs.frozen
class Annotations:
    audience: tuple[Literal["user", "assistant"], ...] | None = attrs.field(
        default=None, converter=_opt_tuple
    )
    priority: float | None = None
    last_modified: str | None = None


@attrs.frozen
class TextResourceContents:
    uri: str
    text: str
    mime_type: str | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class BlobResourceContents:
    """Binary contents; `blob` is base64 text, exactly as on the wire."""

    uri: str
    blob: str
    mime_type: str | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


ResourceContents: TypeAlias = TextResourceContents | BlobResourceContents


@attrs.frozen
class TextContent:
    WIRE_TYPE: ClassVar[str] = "text"
    text: str
    annotations: Annotations | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ImageContent:
    WIRE_TYPE: ClassVar[str] = "image"
    data: str
    mime_type: str
    annotations: Annotations | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class AudioContent:
    WIRE_TYPE: ClassVar[str] = "audio"
    data: str
    mime_type: str
    annotations: Annotations | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ResourceLink:
    WIRE_TYPE: ClassVar[str] = "resource_link"
    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: Annotations | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class EmbeddedResource:
    WIRE_TYPE: ClassVar[str] = "resource"
    resource: ResourceContents
    annotations: Annotations | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


ContentBlock: TypeAlias = TextContent | ImageContent | AudioContent | ResourceLink | EmbeddedResource

# --- tools -----------------------------------------------------------------------------------------------


@attrs.frozen
class ToolAnnotations:
    """Hints about a tool's behaviour; untrusted unless the server is."""

    title: str | None = None
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


@attrs.frozen
class Tool:
    name: str
    input_schema: JsonObject
    title: str | None = None
    description: str | None = None
    output_schema: JsonObject | None = None
    annotations: ToolAnnotations | None = None
    icons: tuple[Icon, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))
    #: 2025-11-25 ``execution`` (``{"taskSupport": "optional"}``); None when the tool has no tasks.
    execution: JsonObject | None = None


@attrs.frozen
class CallToolResult:
    """A tool's answer. `is_error=True` reports a failure the model should see (not a protocol error)."""

    content: tuple[ContentBlock, ...] = attrs.field(default=(), converter=_tuple)
    structured_content: JsonObject | None = None
    is_error: bool = False
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ListToolsResult:
    tools: tuple[Tool, ...] = attrs.field(converter=_tuple)
    next_cursor: str | None = None


# --- resources -------------------------------------------------------------------------------------------


@attrs.frozen
class Resource:
    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: Annotations | None = None
    icons: tuple[Icon, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ResourceTemplate:
    uri_template: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    annotations: Annotations | None = None
    icons: tuple[Icon, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ListResourcesResult:
    resources: tuple[Resource, ...] = attrs.field(converter=_tuple)
    next_cursor: str | None = None


@attrs.frozen
class ListResourceTemplatesResult:
    resource_templates: tuple[ResourceTemplate, ...] = attrs.field(converter=_tuple)
    next_cursor: str | None = None


@attrs.frozen
class ReadResourceResult:
    contents: tuple[ResourceContents, ...] = attrs.field(converter=_tuple)


# --- prompts ---------------------------------------------------------------------------------------------


@attrs.frozen
class PromptArgument:
    name: str
    title: str | None = None
    description: str | None = None
    required: bool | None = None


@attrs.frozen
class Prompt:
    name: str
    title: str | None = None
    description: str | None = None
    arguments: tuple[PromptArgument, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    icons: tuple[Icon, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class PromptMessage:
    role: Role
    content: ContentBlock


@attrs.frozen
class GetPromptResult:
    messages: tuple[PromptMessage, ...] = attrs.field(converter=_tuple)
    description: str | None = None
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))


@attrs.frozen
class ListPromptsResult:
    prompts: tuple[Prompt, ...] = attrs.field(converter=_tuple)
    next_cursor: str | None = None


# --- notifications ---------------------------------------------------------------------------------------


@attrs.frozen
class ProgressNotificationParams:
    progress_token: str | int
    progress: float
    total: float | None = None
    message: str | None = None


@attrs.frozen
class LoggingMessageNotificationParams:
    level: LoggingLevel
    data: Any
    logger: str | None = None


@attrs.frozen
class CancelledNotificationParams:
    request_id: str | int | None = None
    reason: str | None = None


# --- lifecycle -------------------------------------------------------------------------------------------


@attrs.frozen
class InitializeParams:
    protocol_version: str
    capabilities: ClientCapabilities
    client_info: Implementation


@attrs.frozen
class InitializeResult:
    protocol_version: str
    capabilities: ServerCapabilities
    server_info: Implementation
    instructions: str | None = None


@attrs.frozen
class DiscoverResult:
    """The 2026-07-28 `server/discover` answer: what a handshake used to say, cacheable, per request."""

    supported_versions: tuple[str, ...] = attrs.field(converter=_tuple)
    capabilities: ServerCapabilities
    instructions: str | None = None
    ttl_ms: int = 0
    cache_scope: Literal["public", "private"] = "private"
    result_type: str = "complete"
    meta: JsonObject | None = attrs.field(default=None, metadata=_wire_name("_meta"))
