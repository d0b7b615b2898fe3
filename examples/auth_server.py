"""A protected MCP server, end to end: ``python examples/auth_server.py``.

The server is an OAuth resource server (docs/auth.md): tokens are JWTs checked against an issuer's
JWKS, every request needs ``notes:read``, and ``add_note`` needs ``notes:write`` too. To be runnable
on its own, this file also plays the authorization server: it makes a signing key, publishes its JWKS
on 127.0.0.1 and mints tokens with PyJWT. In production that is your identity provider (Auth0, Okta,
Keycloak, Entra ID...): give ``JWTVerifier`` its JWKS URL and issuer, and drop ``local_issuer``.

Then it calls the server three ways: without a token (401 and the metadata pointer), with a token
short of a scope (403 insufficient_scope), and as Alice with the official SDK client.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import jwt
import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpvisor import AuthSettings, Context, JWTVerifier, Server, open_listeners, serve_http, start_server

server = Server("notes")


@server.tool()
async def whoami(ctx: Context) -> str:
    """Who the bearer token says you are."""
    principal = ctx.principal
    assert principal is not None  # the server authenticates every request
    return f"{principal.subject} (client {principal.client_id}, scopes {' '.join(sorted(principal.scopes))})"


@server.tool(required_scopes=["notes:write"])
async def add_note(ctx: Context, text: str) -> int:
    """Add a note to this session's list; returns how many there are."""
    notes: list[str] = await ctx.update_state("notes", lambda old: [*old, text], default=[])
    return len(notes)


# -- a stand-in authorization server (your identity provider's job in production) -------------------


class LocalIssuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "example-key-1"
        self.url = ""

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def jwks(self) -> bytes:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return json.dumps({"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}).encode()

    def token(self, subject: str, audience: str, scopes: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "scope": " ".join(scopes),
            "client_id": "notes-cli",
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@contextmanager
def local_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = issuer.jwks()
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- serve, then call -------------------------------------------------------------------------------

CLIENT = {"name": "notes-example", "version": "1"}
#: A 2026-07-28 request carries its protocol version and client in ``params._meta`` (no session).
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT,
}


def text(result: Any) -> str:
    assert not result.is_error, result
    value: str = result.content[0].text
    return value


async def main() -> None:
    listeners = await open_listeners("127.0.0.1", 0)
    port = listeners[0].socket.getsockname()[1]
    resource = f"http://127.0.0.1:{port}/mcp"  # the URL clients use: also the tokens' audience
    with local_issuer() as issuer:
        auth = AuthSettings(
            verifier=JWTVerifier(jwks_url=issuer.jwks_url, issuer=issuer.url, audience=resource),
            resource_url=resource,
            authorization_servers=[issuer.url],
            required_scopes=["notes:read"],
        )
        async with start_server(server, auth=auth) as running, trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_http, running, listeners=listeners))
            async with httpx2.AsyncClient(timeout=10) as http:
                init = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT},
                }
                headers = {"accept": "application/json, text/event-stream"}
                anonymous = await http.post(resource, json=init, headers=headers)
                print("no token:", anonymous.status_code, anonymous.headers["www-authenticate"])
                metadata = (await http.get(auth.metadata_url)).json()
                print("metadata:", metadata)

            reader = issuer.token("alice", resource, ["notes:read"])
            writer = issuer.token("alice", resource, ["notes:read", "notes:write"])
            async with (
                httpx2.AsyncClient(headers={"authorization": f"Bearer {writer}"}, timeout=10) as http,
                # mode="legacy": a 2025-11-25 session, whose state add_note keeps (bound to Alice).
                Client(streamable_http_client(resource, http_client=http), mode="legacy") as client,  # type: ignore[arg-type]
            ):
                print("whoami:", text(await client.call_tool("whoami", {})))
                print("add_note:", text(await client.call_tool("add_note", {"text": "hello"})))
            async with httpx2.AsyncClient(timeout=10) as http:
                call = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "add_note", "arguments": {"text": "hi"}, "_meta": STATELESS_META},
                }
                stateless = {
                    **headers,
                    "authorization": f"Bearer {reader}",
                    "mcp-protocol-version": "2026-07-28",
                    "mcp-method": "tools/call",
                    "mcp-name": "add_note",
                }
                short = await http.post(resource, json=call, headers=stateless)
                print("without notes:write:", short.status_code, short.headers["www-authenticate"])
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
