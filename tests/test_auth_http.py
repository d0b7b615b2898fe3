"""Authorization over real HTTP (docs/auth.md): a test identity provider (real keys, a JWKS and an
introspection endpoint on 127.0.0.1) issues the tokens; the server answers as an OAuth resource
server: 401 with the metadata pointer, 403 insufficient_scope, the RFC 9728 document."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import trio
from _auth_app import METADATA_URL, RESOURCE, introspection_verifier, jwt_verifier, protected, settings
from _http_messages import INIT, JSON_ONLY, stateless, stateless_headers
from _identity_provider import IdentityProvider, identity_provider, new_key

POST = {**JSON_ONLY, "content-type": "application/json"}
ALL_SCOPES = ["mcp:use", "mcp:admin"]


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with identity_provider() as provider:
        yield provider


def bearer(token: str) -> dict[str, str]:
    return {**POST, "authorization": f"Bearer {token}"}


def challenge_params(value: str) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (our values never contain quotes or commas)."""
    scheme, _, rest = value.partition(" ")
    assert scheme == "Bearer"
    out: dict[str, str] = {}
    for part in rest.split(", "):
        name, _, quoted = part.partition("=")
        assert quoted.startswith('"') and quoted.endswith('"'), value
        out[name] = quoted[1:-1]
    return out


async def call(client: httpx2.AsyncClient, url: str, token: str | None, tool: str, **args: Any) -> Any:
    """A 2026-07-28 tools/call of ``tool`` (no session needed)."""
    headers = stateless_headers("tools/call", tool)
    headers["content-type"] = "application/json"
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return await client.post(
        url, json=stateless("tools/call", {"name": tool, "arguments": args}), headers=headers
    )


async def test_metadata_document_has_rfc_9728_fields(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp), required_scopes=["mcp:use"], resource_name="Protected test")
    with trio.fail_after(20):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            base = url.removesuffix("/mcp")
            for path in (
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource",
            ):
                answer = await client.get(base + path)
                assert answer.status_code == 200, answer.text
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["access-control-allow-origin"] == "*"
                document = answer.json()
                # RFC 9728 section 2: `resource` REQUIRED, an https/http URL without fragment; MCP:
                # `authorization_servers` with at least one issuer; the rest typed as the RFC says.
                assert document["resource"] == RESOURCE
                assert document["authorization_servers"] == [idp.issuer]
                assert all(isinstance(s, str) for s in document["authorization_servers"])
                assert document["bearer_methods_supported"] == ["header"]
                assert document["scopes_supported"] == ["mcp:use", "mcp:admin"]  # required + the tools'
                assert document["resource_name"] == "Protected test"
            # The metadata needs no token; everything else does.
            assert (await client.post(url, json=INIT, headers=POST)).status_code == 401


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
async def test_no_token_is_401_pointing_at_the_metadata(idp: IdentityProvider, http_server: str) -> None:
    auth = settings(idp, jwt_verifier(idp), required_scopes=["mcp:use"])
    with trio.fail_after(20):
        async with protected(auth, http_server=http_server) as url, httpx2.AsyncClient(timeout=10) as client:
            for answer in (
                await client.post(url, json=INIT, headers=POST),
                await call(client, url, None, "counter"),
                await client.get(url, headers={"accept": "text/event-stream"}),
                await client.delete(url, headers={"mcp-session-id": "0" * 32}),
                await client.post(url, json=INIT, headers={**POST, "authorization": "Basic YWxpY2U6eA=="}),
            ):
                assert answer.status_code == 401, answer.text
                params = challenge_params(answer.headers["www-authenticate"])
                assert params == {"scope": "mcp:use", "resource_metadata": METADATA_URL}
                assert answer.json()["error"]["message"].startswith("Unauthorized")


def _refused_tokens(idp: IdentityProvider) -> dict[str, str]:
    stranger = new_key()  # never published
    published = idp.keys[0]
    forged = new_key()
    forged.kid = published.kid  # claims a published kid, signed with another key
    now = time.time()
    good = {"audience": RESOURCE, "scopes": ["mcp:use"]}
    return {
        "expired": idp.token("alice", lifetime=-600, **good),
        "not yet valid": idp.token("alice", not_before=now + 600, **good),
        "wrong audience": idp.token("alice", audience="https://other.example/mcp", scopes=["mcp:use"]),
        "wrong issuer": idp.token("alice", issuer="https://evil.example", **good),
        "bad signature": idp.token("alice", key=forged, **good),
        "unknown kid": idp.token("alice", key=stranger, **good),
        "not a jwt": "not-a-jwt",
        "tampered": idp.token("alice", **good)[:-4] + "AAAA",
    }


async def test_refused_tokens_get_401_invalid_token(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp, leeway=5), required_scopes=["mcp:use"])
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            good = idp.token("alice", audience=RESOURCE, scopes=["mcp:use"])
            assert (await call(client, url, good, "counter")).status_code == 200
            for why, token in _refused_tokens(idp).items():
                answer = await call(client, url, token, "counter")
                assert answer.status_code == 401, (why, answer.text)
                params = challenge_params(answer.headers["www-authenticate"])
                assert params["error"] == "invalid_token", why
                assert params["resource_metadata"] == METADATA_URL
                assert params["error_description"], why


async def test_rotated_keys_are_fetched_on_an_unknown_kid(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp, min_refresh_interval=0.0))
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            old = idp.token("alice", audience=RESOURCE)
            assert (await call(client, url, old, "counter")).status_code == 200
            assert idp.requests["/jwks"] == 1
            assert (await call(client, url, old, "counter")).status_code == 200
            assert idp.requests["/jwks"] == 1  # cached
            idp.rotate("ES256")
            new = idp.token("alice", audience=RESOURCE)
            assert (await call(client, url, new, "counter")).status_code == 200
            assert idp.requests["/jwks"] == 2  # the unknown kid fetched the new set
            refused = await call(client, url, old, "counter")  # its key is gone from the set
            assert refused.status_code == 401
            assert challenge_params(refused.headers["www-authenticate"])["error"] == "invalid_token"


async def test_unknown_kids_refresh_the_jwks_at_most_once_per_interval(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp, min_refresh_interval=60.0))
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            assert (await call(client, url, idp.token("a", audience=RESOURCE), "counter")).status_code == 200
            for _ in range(10):
                stranger = idp.token("mallory", audience=RESOURCE, key=new_key())
                assert (await call(client, url, stranger, "counter")).status_code == 401
            assert idp.requests["/jwks"] == 1  # the first fetch; made-up kids fetch nothing more in 60 s
            # A real rotation inside the interval waits for it: refused meanwhile, never a fetch storm.
            idp.rotate()
            assert (await call(client, url, idp.token("a", audience=RESOURCE), "counter")).status_code == 401
            assert idp.requests["/jwks"] == 1


async def test_missing_scopes_get_403_insufficient_scope(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp), required_scopes=["mcp:use"])
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            # The server-wide scope: no mcp:use, nothing at all (even initialize).
            bare = idp.token("alice", audience=RESOURCE, scopes=["profile"])
            answer = await client.post(url, json=INIT, headers=bearer(bare))
            assert answer.status_code == 403, answer.text
            params = challenge_params(answer.headers["www-authenticate"])
            assert params["error"] == "insufficient_scope"
            assert params["scope"] == "mcp:use"
            assert params["resource_metadata"] == METADATA_URL
            # A tool's own scope: the call is 403 naming both; the other tools still answer.
            user = idp.token("alice", audience=RESOURCE, scopes=["mcp:use"])
            assert (await call(client, url, user, "counter")).status_code == 200
            refused = await call(client, url, user, "reset")
            assert refused.status_code == 403, refused.text
            params = challenge_params(refused.headers["www-authenticate"])
            assert params["error"] == "insufficient_scope"
            assert params["scope"] == "mcp:use mcp:admin"
            assert refused.json()["error"]["code"] == -32051
            assert refused.json()["id"] == 9
            admin = idp.token("alice", audience=RESOURCE, scopes=ALL_SCOPES)
            allowed = await call(client, url, admin, "reset")
            assert allowed.status_code == 200
            assert allowed.json()["result"]["content"][0]["text"] == "reset done"
            # In a session (2025-11-25) the same call is refused the same way.
            opened = await client.post(url, json=INIT, headers=bearer(user))
            sid = opened.headers["mcp-session-id"]
            in_session = {**bearer(user), "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
            body = {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "reset", "arguments": {}},
            }
            assert (await client.post(url, json=body, headers=in_session)).status_code == 403


async def test_the_principal_and_headers_reach_the_tool(idp: IdentityProvider) -> None:
    auth = settings(idp, jwt_verifier(idp))
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            token = idp.token("alice@example.com", audience=RESOURCE, scopes=["mcp:use", "files:read"])
            headers = stateless_headers("tools/call", "whoami")
            headers.update({"content-type": "application/json", "authorization": f"Bearer {token}"})
            headers["x-trace"] = "trace-42"
            answer = await client.post(
                url, json=stateless("tools/call", {"name": "whoami", "arguments": {}}), headers=headers
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["structuredContent"] == {
                "subject": "alice@example.com",
                "client_id": "alice@example.com-app",
                "issuer": idp.issuer,
                "scopes": ["files:read", "mcp:use"],
                "expires": True,
                "jti": True,
                "x_trace": "trace-42",
                "sees_authorization": False,
            }


async def test_introspected_tokens(idp: IdentityProvider) -> None:
    auth = settings(idp, introspection_verifier(idp), required_scopes=["mcp:use"])
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            good = idp.opaque_token("alice", audience=RESOURCE, scopes=["mcp:use"])
            answer = await call(client, url, good, "whoami")
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["structuredContent"]["subject"] == "alice"
            for why, token in {
                "inactive": idp.opaque_token("alice", active=False),
                "unknown": "never-issued",
                "wrong audience": idp.opaque_token("alice", audience="https://other.example/mcp"),
                "expired": idp.opaque_token("alice", audience=RESOURCE, lifetime=-600, scopes=["mcp:use"]),
                "wrong issuer": idp.opaque_token(
                    "alice", audience=RESOURCE, issuer="https://evil.example", scopes=["mcp:use"]
                ),
            }.items():
                refused = await call(client, url, token, "whoami")
                assert refused.status_code == 401, why
                assert challenge_params(refused.headers["www-authenticate"])["error"] == "invalid_token"
            short = idp.opaque_token("alice", audience=RESOURCE, scopes=["profile"])
            assert (await call(client, url, short, "whoami")).status_code == 403
            assert idp.requests["/introspect"] == 7  # one per request: nothing cached


async def test_an_unreachable_authorization_server_is_503_not_401() -> None:
    with identity_provider() as idp:
        auth = settings(idp, jwt_verifier(idp, timeout=2.0))
        token = idp.token("alice", audience=RESOURCE)
    # The provider is stopped: its JWKS cannot be fetched; the token may be perfectly good.
    with trio.fail_after(30):
        async with protected(auth) as url, httpx2.AsyncClient(timeout=10) as client:
            answer = await call(client, url, token, "counter")
            assert answer.status_code == 503, answer.text
            assert idp.base_url not in answer.text  # the detail is logged, not told to clients
            assert "www-authenticate" not in answer.headers
            assert answer.headers["retry-after"] == "5"
