"""The Streamable HTTP side of authorization: the metadata document and the 401 / 403 answers.

What to decide lives in ``mcpvisor.runtime.auth`` (sans-IO apart from the verifier); this module
only maps it onto the exchange. The metadata document (RFC 9728) is public: it is served before the
Origin check and with ``Access-Control-Allow-Origin: *``, since a browser client must read it before
it has any token, and it says nothing an attacker could not read from the challenge anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from ...auth import WELL_KNOWN, AuthSettings, Principal, Refusal, authenticate
from ...protocol import INTERNAL_ERROR, INVALID_REQUEST, RequestId
from ...server._caller import INSUFFICIENT_SCOPE
from ._exchange import Exchange, Scope

_PUBLIC_CORS = [("access-control-allow-origin", "*")]


def without_credentials(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a handler may see (``ctx.headers``): all but ``Authorization``; the verified token
    is ``ctx.principal``, and a raw token has no business in a tool (or in what it logs)."""
    return {name: value for name, value in headers.items() if name != "authorization"}


def _metadata_paths(settings: AuthSettings, scope: Scope) -> set[str]:
    root = str(scope.get("root_path", "")).rstrip("/")
    paths = {WELL_KNOWN, settings.metadata_path}
    return paths | {root + path for path in paths}


async def serve_metadata(
    scope: Scope, ex: Exchange, settings: AuthSettings, tool_scopes: Callable[[], list[str]]
) -> bool:
    """Answer a request for the protected-resource metadata (True), or leave it alone (False).

    Served at the root well-known path and at the one RFC 9728 derives from ``resource_url``
    (``/.well-known/oauth-protected-resource/mcp`` for ``https://host/mcp``): clients try both.
    """
    path = str(scope.get("path", "")).rstrip("/")
    if path not in _metadata_paths(settings, scope):
        return False
    method = scope.get("method", "GET")
    if method == "OPTIONS":
        await ex.respond(
            204,
            headers=[
                *_PUBLIC_CORS,
                ("access-control-allow-methods", "GET"),
                ("access-control-allow-headers", "mcp-protocol-version"),
                ("access-control-max-age", "600"),
            ],
        )
    elif method in ("GET", "HEAD"):
        body = json.dumps(settings.metadata(tool_scopes()), separators=(",", ":")).encode()
        await ex.respond(200, body, [*_PUBLIC_CORS, ("cache-control", "max-age=300")])
    else:
        await ex.error(405, INVALID_REQUEST, "Method Not Allowed", [("allow", "GET"), *_PUBLIC_CORS])
    return True


async def answer_refusal(ex: Exchange, refusal: Refusal, request_id: RequestId | None = None) -> None:
    """The refusal as an HTTP status, its ``WWW-Authenticate`` challenge and a JSON-RPC error body."""
    headers = [("www-authenticate", refusal.challenge)] if refusal.challenge is not None else []
    if refusal.status == 503:
        headers.append(("retry-after", "5"))
    code = {401: INVALID_REQUEST, 403: INSUFFICIENT_SCOPE}.get(refusal.status, INTERNAL_ERROR)
    await ex.error(refusal.status, code, refusal.message, headers, request_id=request_id)


async def authenticate_exchange(
    ex: Exchange, settings: AuthSettings, headers: Mapping[str, str]
) -> Principal | None:
    """The request's principal, or None once the refusal has been answered."""
    found = await authenticate(settings, headers)
    if isinstance(found, Refusal):
        await answer_refusal(ex, found)
        return None
    return found
