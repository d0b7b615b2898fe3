"""`serve_http`: run the Streamable HTTP app on an HTTP server (ours, or hypercorn) until
cancelled, with bind errors told in one line (`ListenError`) and a warning when a server reachable
from other machines checks no Host or Origin.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Final, TypeVar

import trio

from ...tree._port import ServerPort
from ._app import McpHttpApp
from ._asgi_limits import with_request_limits
from ._guard import LOOPBACK_HOSTS
from ._hypercorn_runner import run_hypercorn
from ._listen_error import ListenError, open_listeners, single_os_error
from ._options import HttpOptions

__all__ = ["HTTP_SERVERS", "ListenError", "open_listeners", "serve_http"]

T = TypeVar("T")

logger = logging.getLogger("mcpvisor.runtime.transports")


def _is_loopback(host: str) -> bool:
    return host.strip("[]").lower() in {h.strip("[]") for h in LOOPBACK_HOSTS} or host.startswith("127.")


def _warn_if_exposed(app: McpHttpApp, host: str) -> None:
    """Say so, once at start, when a server reachable from other machines checks no Host (or Origin):
    DNS-rebinding protection then rests on the other check alone, or on nothing."""
    if _is_loopback(host):
        return
    off = [name for name, allow in (("Host", app.hosts), ("Origin", app.origins)) if allow.allows_all]
    if not off:
        return
    logger.warning(
        "serving on non-loopback address %s with the %s check off: a browser page can reach this server"
        " through DNS rebinding unless a proxy in front checks it; name your public host names with"
        " allowed_hosts=[...] (and origins with allowed_origins=[...])",
        host,
        " and ".join(off),
    )


#: The HTTP servers ``serve_http`` can run the app on.
HTTP_SERVERS: Final = ("h11", "hypercorn")


async def serve_http(
    running: ServerPort,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    http_server: str | None = None,
    listeners: Sequence[trio.SocketListener] | None = None,
    keep_alive: float = 5.0,
    max_header_bytes: int = 64 * 1024,
    body_timeout: float = 30.0,
    max_connections: int | None = None,
    http_parser: str | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    port_number: int | None = None,
    server: str | None = None,
    options: HttpOptions | None = None,
    **overrides: Any,
) -> None:
    """Serve `running` (a started server's `ServerPort`) over Streamable HTTP until cancelled.

    `port` and `http_server` mean what they mean to `serve()`: the TCP port (8000) and the HTTP server
    (`"h11"`). `port_number` and `server` are their former names, still accepted.

    Connection limits (docs/http.md, "Connection limits"): a connection idle, or sending a request head, for
    `keep_alive` seconds is closed; a head over `max_header_bytes` is 431; a request body not received
    within `body_timeout` seconds is 408; at most `max_connections` connections are held (default:
    from the file descriptor limit; ours only, hypercorn has no cap).

    `http_parser` picks our server's request parser (docs/http.md, "Request parser"): `"httptools"`
    (llhttp, in C; the default when httptools is installed, as it is with mcpvisor) or `"h11"` (pure
    Python); both enforce the same limits and answer bad requests the same way. Ours only.

    A bind that fails raises `ListenError`, whose text is one line naming the address and the cause.
    `listeners` already open (`open_listeners(host, port_number)`, e.g. to fail before starting the
    server tree) are served instead of binding `host:port_number`; they become the server's.

    `server` picks the HTTP server: `"h11"` (the default), our lean HTTP/1.1 server on trio sockets
    (``_asgi_h11``), or `"hypercorn"`, hypercorn's trio worker (HTTP/2 and TLS options live there).
    `task_status.started(bound_port)` reports the real port, so `port_number=0` picks a free one.
    `options` (an `HttpOptions`) and the keyword arguments `overrides` (its fields by name) configure
    the app, as for `mcp_asgi_app`. Bound to a non-loopback address with no `allowed_hosts`, the Host
    check is off (the machine's public names are unknown to us); the Origin check stays on. Nothing is
    printed: the servers' messages go to the `mcpvisor.runtime.transports` logger.
    """
    port_number = _renamed("port", port, "port_number", port_number, 8000)
    server = _renamed("http_server", http_server, "server", server, "h11")
    if server not in HTTP_SERVERS:
        raise ValueError(f"unknown HTTP server {server!r}: use one of {', '.join(HTTP_SERVERS)}")
    settings = HttpOptions.build(options, overrides, where="serve_http")
    if settings.allowed_hosts is None and not _is_loopback(host):
        settings = HttpOptions.build(settings, {"allowed_hosts": ["*"]}, where="serve_http")
    if server == "hypercorn" and max_connections is not None:
        raise ValueError("max_connections: hypercorn has no connection cap; use server='h11' for one")
    if server == "hypercorn" and http_parser is not None:
        raise ValueError("http_parser: hypercorn parses with h11 itself; use server='h11' to choose one")
    if http_parser is not None:
        from ._asgi_h11 import HTTP_PARSERS

        if http_parser not in HTTP_PARSERS:
            raise ValueError(f"unknown HTTP parser {http_parser!r}: use one of {', '.join(HTTP_PARSERS)}")
    app = McpHttpApp(running, settings)
    _warn_if_exposed(app, host)
    started = False
    try:
        if server == "h11":
            from ._asgi_h11 import serve_asgi

            bare = host.strip("[]")
            async with trio.open_nursery() as nursery:
                bound: int = await nursery.start(
                    functools.partial(
                        serve_asgi,
                        app,
                        host=bare,
                        port=port_number,
                        listeners=listeners,
                        keep_alive=keep_alive,
                        max_header_bytes=max_header_bytes,
                        body_timeout=body_timeout,
                        max_connections=max_connections,
                        parser=http_parser,
                    )
                )
                started = True
                task_status.started(bound)
            return
        from hypercorn.config import Config

        if listeners is None:  # bound here, so a restarted hypercorn serves the same socket
            listeners = await open_listeners(host, port_number)
        config = Config()
        config.accesslog = None
        config.errorlog = logger
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = keep_alive
        config.h11_max_incomplete_size = max_header_bytes
        # What hypercorn does not enforce itself (see _asgi_limits): the smuggling close, an exact
        # head limit, the body timeout.
        limited = with_request_limits(app, max_header_bytes=max_header_bytes, body_timeout=body_timeout)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(functools.partial(run_hypercorn, limited, config, listeners))
            started = True
            task_status.started(bound)
    except (OSError, BaseExceptionGroup) as exc:
        # Before it started, an OSError can only be the bind: say so in one line (ListenError).
        found = None if started else single_os_error(exc)
        if found is None:
            raise
        if isinstance(found, ListenError):
            raise found from found.__cause__
        raise ListenError.from_os_error(host.strip("[]"), port_number, found) from found


def _renamed(name: str, value: T | None, old: str, old_value: T | None, default: T) -> T:
    """A keyword given by its name or its former name (not both), else its default."""
    if value is not None and old_value is not None:
        raise TypeError(f"serve_http: {old!r} is the former name of {name!r}; pass only {name!r}")
    if value is not None:
        return value
    return old_value if old_value is not None else default
