"""`Server`: the registry of tools, resources, prompts and completers a user builds with decorators.

A `Server` is a plain description -- no tasks, no I/O -- so two can coexist and tests can build one per
case. `handle_request` (in `_dispatch.py`) answers MCP methods from it; `run()` hands it to the runtime.
Registration errors (a duplicate name, a hint that cannot be a schema, a sync handler asking for a
Context) are raised at decoration time, where the traceback points at the offending function.

Length: one registry class whose decorators each come typed twice (bare and called, ``@overload``) and
carry every per-item option (annotations, scopes, task support); splitting them across modules would
scatter one user-facing signature over several files.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeVar, overload

from ..protocol import (
    LATEST_STATELESS_VERSION,
    STATELESS_VERSIONS,
    Annotations,
    DiscoverResult,
    Icon,
    Implementation,
    InitializeResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PromptsCapability,
    Resource,
    ResourcesCapability,
    ResourceTemplate,
    ServerCapabilities,
    ToolAnnotations,
    ToolsCapability,
    from_wire,
    param_headers_of,
    to_wire,
)
from ..protocol._tasks import TASKS_CAPABILITY, TASKS_EXTENSION, TASKS_VERSION, TaskSupport
from ._completion import RegisteredCompleter, make_completer
from ._handler import logger
from ._input_rounds import StateSeal
from ._prompts import RegisteredPrompt, make_prompt
from ._resources import RegisteredResource, RegisteredTemplate, make_resource, make_template
from ._tools import RegisteredTool, make_tool

F = TypeVar("F", bound=Callable[..., Any])
#: SEP-986 (2025-11-25): tool names SHOULD be 1-128 characters of these.
_TOOL_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")
ListKind = Literal["tools", "resources", "prompts"]


def _doc(fn: Callable[..., Any]) -> str | None:
    return inspect.getdoc(fn) or None


def _fn_name(fn: Callable[..., Any], default: str | None = None) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        if default is not None:
            return default
        raise ValueError(f"{fn!r} has no usable __name__: pass name=...")
    return name


class Server:
    """An MCP server's contents: what it offers and the handlers behind it.

    >>> server = Server("demo")
    >>> @server.tool
    ... def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b
    """

    def __init__(
        self,
        name: str,
        version: str = "0.1.0",
        instructions: str | None = None,
        *,
        title: str | None = None,
        website_url: str | None = None,
        icons: Iterable[Icon] | None = None,
        request_state_key: bytes | None = None,
        auth: Any = None,
    ) -> None:
        """``request_state_key`` signs the ``requestState`` of ``InputRequired`` answers (a random key
        per Server by default); give every process the same one when several serve one endpoint.
        ``auth`` (``mcpvisor.runtime.auth.AuthSettings``) protects it when served over HTTP
        (docs/auth.md); stdio ignores it."""
        #: ``AuthSettings`` for HTTP (None: no authentication).
        self.auth = auth
        self.name = name
        self.version = version
        self.instructions = instructions
        self.server_info = Implementation(
            name, version, title=title, website_url=website_url, icons=tuple(icons) if icons else None
        )
        self._state_seal = StateSeal(request_state_key)
        self._tools: dict[str, RegisteredTool] = {}
        self._resources: dict[str, RegisteredResource] = {}
        self._templates: dict[str, RegisteredTemplate] = {}
        self._prompts: dict[str, RegisteredPrompt] = {}
        self._completers: dict[tuple[str, str], RegisteredCompleter] = {}
        self._list_listeners: list[Callable[[ListKind], None]] = []
        self._update_listeners: list[Callable[[str], None]] = []
        # Wire forms of the list results, built on first use and dropped on every change: tools/list
        # is asked for often and its answer only changes when a registration does.
        self._listings: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return (
            f"Server({self.name!r}, tools={len(self._tools)}, resources={len(self._resources)}, "
            f"templates={len(self._templates)}, prompts={len(self._prompts)})"
        )

    # -- tools ------------------------------------------------------------------------------------------

    @overload
    def tool(self, fn: F, /) -> F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        input_schema: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        icons: Iterable[Icon] | None = None,
        task: TaskSupport | bool | None = None,
        required_scopes: Iterable[str] | None = None,
        inline: bool = False,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        input_schema: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        icons: Iterable[Icon] | None = None,
        task: TaskSupport | bool | None = None,
        required_scopes: Iterable[str] | None = None,
        inline: bool = False,
    ) -> F | Callable[[F], F]:
        """Register a tool: ``@server.tool`` or ``@server.tool(name=..., ...)``.

        The input schema comes from the parameters' hints, the description from the docstring, the
        output schema from a structured return annotation (or ``output_schema=``). ``input_schema=``
        replaces the hints with a hand-written JSON Schema, advertised verbatim (see
        ``_schema_arguments.py`` for what the server still checks). ``annotations`` takes a
        ``ToolAnnotations`` or its wire form (``{"readOnlyHint": True}``).

        ``task`` lets clients run the tool as a background task (docs/tasks.md): ``"optional"`` (or
        ``True``) when they may, ``"required"`` when they must, ``"forbidden"`` (the default) never.

        ``required_scopes`` are the OAuth scopes a caller's token must grant (docs/auth.md): over HTTP
        with authentication a call without them is answered 403 ``insufficient_scope``.
        ``inline=True`` (sync functions only) calls the function on the event loop instead of in a
        worker thread: about half the cost of a trivial call, for functions that **must not block**
        (no I/O, no sleeping, no long computation): while one runs, every session of the server waits.
        """

        def register(fn: F) -> F:
            tool_name = name or _fn_name(fn)
            if not _TOOL_NAME.fullmatch(tool_name):
                logger.warning(
                    "tool name %r breaks the spec's advice (1-128 of A-Z a-z 0-9 _ - .); "
                    "some clients may refuse it",
                    tool_name,
                )
            if tool_name in self._tools:
                raise ValueError(f"a tool named {tool_name!r} is already registered")
            tool_annotations = (
                from_wire(dict(annotations), ToolAnnotations)
                if isinstance(annotations, Mapping)
                else annotations
            )
            self._tools[tool_name] = make_tool(
                fn,
                name=tool_name,
                title=title,
                description=description if description is not None else _doc(fn),
                annotations=tool_annotations,
                output_schema=output_schema,
                input_schema=input_schema,
                meta=meta,
                icons=tuple(icons) if icons else None,
                task=task,
                required_scopes=required_scopes,
                inline=inline,
            )
            self._list_changed("tools")
            return fn

        return register(fn) if fn is not None else register

    def param_headers(self, tool: str) -> dict[str, str]:
        """The ``Mcp-Param-*`` headers (lower-case) a 2026-07-28 HTTP ``tools/call`` of ``tool`` must
        send, by argument: the ``x-mcp-header`` annotations of its input schema (SEP-2243)."""
        registered = self._tools.get(tool)
        return param_headers_of(registered.tool.input_schema) if registered is not None else {}

    def tool_scopes(self, tool: str) -> tuple[str, ...]:
        """The OAuth scopes calling ``tool`` needs (``required_scopes=``); () for none or no such tool."""
        registered = self._tools.get(tool)
        return registered.required_scopes if registered is not None else ()

    def all_tool_scopes(self) -> list[str]:
        """Every scope some tool needs, in registration order (advertised as ``scopes_supported``)."""
        return list(dict.fromkeys(s for t in self._tools.values() for s in t.required_scopes))

    def remove_tool(self, name: str) -> None:
        """Stop offering a tool (clients are told through ``notifications/tools/list_changed``)."""
        if self._tools.pop(name, None) is None:
            raise KeyError(f"no tool named {name!r}")
        self._list_changed("tools")

    # -- resources --------------------------------------------------------------------------------------

    def resource(
        self,
        uri: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
        annotations: Annotations | None = None,
        icons: Iterable[Icon] | None = None,
    ) -> Callable[[F], F]:
        """Register a fixed resource at ``uri``; its handler takes no arguments (a Context at most)."""

        def register(fn: F) -> F:
            if uri in self._resources:
                raise ValueError(f"a resource with URI {uri!r} is already registered")
            if "{" in uri:
                raise ValueError(
                    f"resource URI {uri!r} looks like a template: use @server.resource_template for it"
                )
            record = Resource(
                uri,
                name or _fn_name(fn, default=uri),
                title=title,
                description=description if description is not None else _doc(fn),
                mime_type=mime_type,
                size=size,
                annotations=annotations,
                icons=tuple(icons) if icons else None,
            )
            self._resources[uri] = make_resource(fn, record)
            self._list_changed("resources")
            return fn

        return register

    def resource_template(
        self,
        uri_template: str,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        mime_type: str | None = None,
        annotations: Annotations | None = None,
        icons: Iterable[Icon] | None = None,
    ) -> Callable[[F], F]:
        """Register a family of resources (RFC 6570: ``users://{id}``, ``file:///{+path}``,
        ``search://q{?text}``); the handler's parameters are the template's variables, converted by
        their hints."""

        def register(fn: F) -> F:
            if uri_template in self._templates:
                raise ValueError(f"a resource template {uri_template!r} is already registered")
            record = ResourceTemplate(
                uri_template,
                name or _fn_name(fn, default=uri_template),
                title=title,
                description=description if description is not None else _doc(fn),
                mime_type=mime_type,
                annotations=annotations,
                icons=tuple(icons) if icons else None,
            )
            self._templates[uri_template] = make_template(fn, record)
            self._list_changed("resources")
            return fn

        return register

    def remove_resource(self, uri: str) -> None:
        """Stop offering a fixed resource or a template (by its URI or URI template)."""
        if self._resources.pop(uri, None) is None and self._templates.pop(uri, None) is None:
            raise KeyError(f"no resource or resource template {uri!r}")
        self._list_changed("resources")

    # -- prompts ----------------------------------------------------------------------------------------

    @overload
    def prompt(self, fn: F, /) -> F: ...

    @overload
    def prompt(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: Iterable[Icon] | None = None,
    ) -> Callable[[F], F]: ...

    def prompt(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        icons: Iterable[Icon] | None = None,
    ) -> F | Callable[[F], F]:
        """Register a prompt: its arguments are the handler's parameters (required: no default)."""

        def register(fn: F) -> F:
            prompt_name = name or _fn_name(fn)
            if prompt_name in self._prompts:
                raise ValueError(f"a prompt named {prompt_name!r} is already registered")
            self._prompts[prompt_name] = make_prompt(
                fn,
                name=prompt_name,
                title=title,
                description=description if description is not None else _doc(fn),
                icons=tuple(icons) if icons else None,
            )
            self._list_changed("prompts")
            return fn

        return register(fn) if fn is not None else register

    def remove_prompt(self, name: str) -> None:
        if self._prompts.pop(name, None) is None:
            raise KeyError(f"no prompt named {name!r}")
        self._list_changed("prompts")

    # -- completion -------------------------------------------------------------------------------------

    def completion(self, ref: Literal["ref/prompt", "ref/resource"], name: str) -> Callable[[F], F]:
        """Register the completer for a prompt's arguments (``"ref/prompt", "greet"``) or a resource
        template's variables (``"ref/resource", "users://{id}"``). See ``_completion.py`` for the
        parameters a completer may declare."""

        def register(fn: F) -> F:
            if (ref, name) in self._completers:
                raise ValueError(f"a completer for {ref} {name!r} is already registered")
            self._completers[(ref, name)] = make_completer(fn, ref, name)
            return fn

        return register

    # -- list changes -----------------------------------------------------------------------------------

    def on_list_changed(self, listener: Callable[[ListKind], None]) -> Callable[[], None]:
        """Call ``listener("tools" | "resources" | "prompts")`` after each registration or removal.

        The runtime uses it to send ``notifications/*/list_changed``. Returns a function that removes
        the listener. Listeners run synchronously inside the decorator: keep them non-blocking.
        """
        self._list_listeners.append(listener)
        return lambda: self._list_listeners.remove(listener)

    def _list_changed(self, kind: ListKind) -> None:
        self._listings.clear()
        for listener in list(self._list_listeners):
            listener(kind)

    def notify_resource_updated(self, uri: str) -> None:
        """Tell the sessions subscribed to ``uri`` that it changed (``notifications/resources/updated``).

        Call it from anywhere: an async or sync handler (a worker thread), or a background task of the
        application. It returns at once; delivery is the running server's EventBus's job. With no
        running server it does nothing, as there is nobody to tell.
        """
        for listener in list(self._update_listeners):
            listener(uri)

    def on_resource_updated(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(uri)`` on each ``notify_resource_updated``; returns its remover. The runtime
        uses it; listeners must not block."""
        self._update_listeners.append(listener)
        return lambda: self._update_listeners.remove(listener)

    def listing(self, method: str) -> dict[str, Any]:
        """The wire result of ``tools/list``, ``resources/list``, ``resources/templates/list`` or
        ``prompts/list`` (a fresh top-level dict each time; the nested values are shared)."""
        cached = self._listings.get(method)
        if cached is None:
            record: Any
            if method == "tools/list":
                record = ListToolsResult([t.tool for t in self._tools.values()])
            elif method == "resources/list":
                record = ListResourcesResult([r.resource for r in self._resources.values()])
            elif method == "resources/templates/list":
                record = ListResourceTemplatesResult([t.template for t in self._templates.values()])
            elif method == "prompts/list":
                record = ListPromptsResult([p.prompt for p in self._prompts.values()])
            else:
                raise ValueError(f"{method!r} is not a list method")
            cached = self._listings[method] = to_wire(record)
        return dict(cached)

    # -- what we tell clients ---------------------------------------------------------------------------

    def capabilities(self, protocol_version: str | None = None) -> ServerCapabilities:
        """Derived from what is registered; ``logging`` is always offered (any handler may log).

        ``listChanged`` and ``subscribe`` are on in both eras: the runtime pushes ``list_changed`` and
        ``resources/updated`` to sessions, and from 2026-07-28 on serves them on ``subscriptions/listen``
        streams. (``protocol_version`` is kept for revisions that may differ.)
        """
        return ServerCapabilities(
            tools=ToolsCapability(list_changed=True) if self._tools else None,
            resources=(
                ResourcesCapability(subscribe=True, list_changed=True)
                if self._resources or self._templates
                else None
            ),
            prompts=PromptsCapability(list_changed=True) if self._prompts else None,
            logging={},
            completions={} if self._completers else None,
            tasks=TASKS_CAPABILITY if self._offers_tasks(protocol_version) else None,
            extensions=(
                {TASKS_EXTENSION: {}}
                if protocol_version in STATELESS_VERSIONS and self._has_task_tools()
                else None
            ),
        )

    def _has_task_tools(self) -> bool:
        return any(t.task_support != "forbidden" for t in self._tools.values())

    def _offers_tasks(self, protocol_version: str | None) -> bool:
        """The 2025-11-25 ``tasks`` capability: offered when a tool can run as a task."""
        return protocol_version in (None, TASKS_VERSION) and self._has_task_tools()

    def initialize_result(self, protocol_version: str) -> dict[str, Any]:
        """The wire ``InitializeResult`` at the negotiated ``protocol_version``."""
        record = InitializeResult(
            protocol_version, self.capabilities(protocol_version), self.server_info, self.instructions
        )
        result: dict[str, Any] = to_wire(record)
        return result

    def discover_result(self, protocol_version: str = LATEST_STATELESS_VERSION) -> dict[str, Any]:
        """The wire ``DiscoverResult`` (2026-07-28 ``server/discover``).

        ``supportedVersions`` lists the stateless revisions only, as the official SDK does: a client
        that wants a handshake revision learns that from ``initialize``.
        """
        record = DiscoverResult(STATELESS_VERSIONS, self.capabilities(protocol_version), self.instructions)
        result: dict[str, Any] = to_wire(record)
        return result

    # -- running ----------------------------------------------------------------------------------------

    def run(
        self,
        transport: str = "stdio",
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        session_state_store: str = "memory://",
        task_backend: str = "memory://",
        http_server: str = "h11",
        protocol: str | None = None,
        http_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Serve until interrupted (blocking); see docs/server.md for transports and backends.

        ``options`` go to ``start_server``: the limits (``max_sessions``, ``max_requests_per_session``,
        ``max_queued_requests_per_session``, ``max_stateless_requests``), ``session_idle_timeout``,
        ``session_restart_intensity`` / ``session_restart_period`` and the rest. ``http_options`` are
        ``serve_http``'s connection limits (docs/http.md, "Connection limits"). ``protocol`` serves one
        era only: ``"2025-11-25"`` (sessions) or ``"2026-07-28"`` (stateless, state through handles);
        None serves both.
        """
        from ..transports._run import run_server  # type: ignore[import-not-found,unused-ignore]

        run_server(
            self,
            transport=transport,
            host=host,
            port=port,
            session_state_store=session_state_store,
            task_backend=task_backend,
            http_server=http_server,
            http_options=http_options,
            **options,
            protocol=protocol,
        )
