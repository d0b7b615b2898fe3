"""`HttpOptions`: the Streamable HTTP app's options, declared once.

`McpHttpApp`, `mcp_asgi_app` and `serve_http` all take them, either as one `HttpOptions` or as the
keyword arguments of the same names (`HttpOptions.build`); the checks live here, so a bad value fails
the same way whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ...auth import AuthSettings


def _at_least_zero(what: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"{attribute.name} must be >= 0 seconds (or None {what})")

    return check


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds (or None for no keep-alive comments)")


@attrs.frozen(kw_only=True)
class HttpOptions:
    """How the Streamable HTTP endpoint behaves (docs/http.md, "Options"); every field has a default.

    `allowed_origins` / `allowed_hosts` default to the loopback names on any port (DNS-rebinding
    protection for a local server); pass your public names when serving elsewhere, or `["*"]` to turn
    a check off. `json_response=True` answers every request with one JSON body instead of an SSE stream.
    `sse_poll_after` closes a POST's SSE connection after that many seconds without the final answer,
    so clients resume with GET + `Last-Event-ID` (SEP-1699 polling); `retry_ms` is the reconnect delay
    announced to them. `path=None` serves every path (when a router already chose this app).
    `keepalive` (seconds) writes an SSE comment on a stream that has been quiet that long, so proxies
    and client read timeouts do not end a long-lived one (a GET stream, a `subscriptions/listen`).
    A request whose client closed the response is cancelled, so it frees its place in the limits: at
    once for a JSON answer (it cannot be resumed), after `abandon_after` seconds without a connection
    following it for an SSE stream (the client may resume it meanwhile; None: never).
    `reply_buffer` is how many replies of one request may wait for the HTTP writer.
    `auth` turns on OAuth authorization (docs/auth.md): every request needs a bearer token the
    settings' verifier accepts, the protected-resource metadata is served at its well-known path, and
    sessions are bound to the principal that created them. Default: the running server's
    ``auth`` (``start_server(auth=...)`` or ``Server(auth=...)``), else none.
    """

    path: str | None = "/mcp"
    allowed_origins: Sequence[str] | None = None
    allowed_hosts: Sequence[str] | None = None
    json_response: bool = False
    retry_ms: int = 1000
    sse_poll_after: float | None = attrs.field(default=None, validator=_at_least_zero("to keep streams open"))
    max_body_bytes: int = 4 * 1024 * 1024
    max_events_per_stream: int = 1024
    max_streams_per_session: int = 64
    reply_buffer: int = 64
    keepalive: float | None = attrs.field(default=15.0, validator=_positive_or_none)
    abandon_after: float | None = attrs.field(
        default=30.0, validator=_at_least_zero("to never cancel abandoned streams")
    )
    auth: AuthSettings | None = None

    @classmethod
    def build(cls, options: HttpOptions | None, overrides: Mapping[str, Any], *, where: str) -> HttpOptions:
        """`options` (or the defaults) with the keyword arguments `overrides` applied on top.

        An unknown keyword is a TypeError naming `where` (the function called) and the known ones.
        """
        unknown = sorted(set(overrides) - set(attrs.fields_dict(cls)))
        if unknown:
            known = ", ".join(attrs.fields_dict(cls))
            raise TypeError(f"{where}: unknown option(s) {', '.join(unknown)}; the options are: {known}")
        base = options if options is not None else cls()
        return attrs.evolve(base, **overrides) if overrides else base
