"""The server the authorization tests protect: state, a scoped tool, a task tool, and a tool that
reports who called it (``ctx.principal``, ``ctx.headers``)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from _identity_provider import INTROSPECTION_CLIENT, IdentityProvider
from mcpvisor.runtime.auth import AuthSettings, IntrospectionVerifier, JWTVerifier, TokenVerifier
from mcpvisor.runtime.server import Context, Server, StateHandle, start_server
from mcpvisor.runtime.transports.http import serve_http

#: The canonical URL of the protected server: what tokens' audience must name.
RESOURCE = "https://mcp.test.example/mcp"
METADATA_URL = "https://mcp.test.example/.well-known/oauth-protected-resource/mcp"

app = Server("protected")


@app.tool()
async def counter(ctx: Context, handle: StateHandle | None = None) -> str:
    """The session's counter, or a state handle's (opened on the first stateless call)."""
    if handle is None and ctx.session_id is None:
        await ctx.open_handle()
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
    return f"count = {count} {ctx.handle or 'session'}"


@app.tool()
async def whoami(ctx: Context) -> dict[str, Any]:
    principal = ctx.principal
    assert principal is not None
    return {
        "subject": principal.subject,
        "client_id": principal.client_id,
        "issuer": principal.issuer,
        "scopes": sorted(principal.scopes),
        "expires": principal.expires_at is not None,
        "jti": principal.claims.get("jti") is not None,
        "x_trace": ctx.headers.get("x-trace"),
        "sees_authorization": "authorization" in ctx.headers,
    }


@app.tool(required_scopes=["mcp:admin"])
async def reset(ctx: Context) -> str:
    """Needs the admin scope."""
    return "reset done"


@app.tool(task="optional")
async def long_job(seconds: float = 0.0) -> str:
    await trio.sleep(seconds)
    return "job done"


def jwt_verifier(idp: IdentityProvider, **how: Any) -> JWTVerifier:
    return JWTVerifier(jwks_url=idp.jwks_url, issuer=idp.issuer, audience=RESOURCE, **how)


def introspection_verifier(idp: IdentityProvider) -> IntrospectionVerifier:
    client_id, secret = INTROSPECTION_CLIENT
    return IntrospectionVerifier(
        introspection_url=idp.introspection_url,
        audience=RESOURCE,
        client_id=client_id,
        client_secret=secret,
        issuer=idp.issuer,
    )


def settings(idp: IdentityProvider, verifier: TokenVerifier, **how: Any) -> AuthSettings:
    return AuthSettings(verifier=verifier, resource_url=RESOURCE, authorization_servers=[idp.issuer], **how)


@asynccontextmanager
async def protected(
    auth: AuthSettings | None, http_server: str = "h11", **options: Any
) -> AsyncIterator[str]:
    """The app served over HTTP on a free port with ``auth``; yields the endpoint URL."""
    async with start_server(app, auth=auth, **options) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0, server=http_server))
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()
