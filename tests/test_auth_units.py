"""The authorization pieces without a server: settings validation, the challenge and bearer parsing,
principals, the scope check behind the transport (JSON-RPC -32051), and the JWKS cache's single fetch
under concurrency. Real keys and a real JWKS over HTTP where a verifier is involved."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio
from _auth_app import RESOURCE, jwt_verifier
from _identity_provider import identity_provider
from mcpvisor.runtime.auth import (
    AuthSettings,
    InvalidToken,
    JWTVerifier,
    Principal,
    Refusal,
    authenticate,
    bearer_token,
    challenge,
)
from mcpvisor.runtime.protocol import JsonRpcError, Request
from mcpvisor.runtime.server import Context, LocalEnv, Server, handle_request


class Static:
    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    async def verify_token(self, token: str) -> Principal | None:
        return self.principal


def settings(verifier: Any = None, **how: Any) -> AuthSettings:
    how.setdefault("resource_url", "https://mcp.example.com/tenant/mcp/")
    how.setdefault("authorization_servers", ["https://login.example.com"])
    return AuthSettings(verifier=verifier or Static(Principal("alice")), **how)


def test_settings_are_checked_at_construction() -> None:
    with pytest.raises(TypeError, match="verify_token"):
        AuthSettings(verifier=object(), resource_url=RESOURCE, authorization_servers=["https://a.example"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="absolute http"):
        settings(resource_url="mcp.example.com/mcp")
    with pytest.raises(ValueError, match="at least one issuer"):
        AuthSettings(verifier=Static(None), resource_url=RESOURCE, authorization_servers=[])
    with pytest.raises(ValueError, match="fragment"):
        settings(resource_url="https://mcp.example.com/mcp#x")
    with pytest.raises(ValueError, match="not accepted"):
        JWTVerifier(jwks_url="https://a/jwks", issuer="https://a", audience=RESOURCE, algorithms=["HS256"])
    with pytest.raises(ValueError, match="audience is required"):
        JWTVerifier(jwks_url="https://a/jwks", issuer="https://a", audience="")


def test_metadata_location_follows_rfc_9728() -> None:
    auth = settings()
    assert auth.metadata_path == "/.well-known/oauth-protected-resource/tenant/mcp"
    assert auth.metadata_url == "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp"
    root = settings(resource_url="https://mcp.example.com")
    assert root.metadata_url == "https://mcp.example.com/.well-known/oauth-protected-resource"
    document = settings(required_scopes=["a"], scopes_supported=["a", "b"]).metadata(["c"])
    assert document["scopes_supported"] == ["a", "b"]  # given explicitly: as given
    assert settings().metadata()  # no scopes: no scopes_supported key
    assert "scopes_supported" not in settings().metadata()


def test_bearer_parsing() -> None:
    assert bearer_token({"authorization": "Bearer abc.def"}) == "abc.def"
    assert bearer_token({"authorization": "bearer   abc"}) == "abc"
    for bad in ("Basic abc", "Bearer", "Bearer a b", "Bearer a,b", ""):
        assert bearer_token({"authorization": bad}) is None
    assert bearer_token({}) is None


def test_challenge_values_stay_quoted_strings() -> None:
    value = challenge(settings(), error="invalid_token", description='a "quoted" \\ thing\n')
    assert value.startswith("Bearer error=\"invalid_token\", error_description=\"a 'quoted' ' thing'\"")


async def test_a_custom_verifier_returning_none_or_an_expired_principal_is_refused() -> None:
    assert isinstance(await authenticate(settings(Static(None)), {"authorization": "Bearer x"}), Refusal)
    stale = Principal("alice", expires_at=time.time() - 60)
    refused = await authenticate(settings(Static(stale)), {"authorization": "Bearer x"})
    assert isinstance(refused, Refusal) and refused.status == 401
    assert refused.challenge is not None and "has expired" in refused.challenge
    fine = await authenticate(settings(Static(Principal("alice"))), {"authorization": "Bearer x"})
    assert isinstance(fine, Principal)
    skewed = Principal("alice", expires_at=time.time() - 5)  # within the clock skew allowed
    assert isinstance(await authenticate(settings(Static(skewed)), {"authorization": "Bearer x"}), Principal)


def test_principals() -> None:
    alice = Principal("alice", issuer="https://a", scopes=["x", "y"])
    assert alice.key == Principal("alice", issuer="https://a").key  # scopes do not change who it is
    assert alice.key != Principal("alice", issuer="https://b").key
    assert alice.key != Principal("bob", issuer="https://a").key
    assert "alice" not in alice.key  # hashed: what reaches stores and logs names nobody
    assert alice.has_scopes(["x"]) and not alice.has_scopes(["x", "z"])
    assert alice.missing_scopes(["z", "x", "w"]) == ["w", "z"]


async def test_the_server_checks_tool_scopes_behind_the_transport() -> None:
    server = Server("scoped")

    @server.tool(required_scopes=["files:write"])
    def write(path: str) -> str:
        return f"wrote {path}"

    @server.tool()
    async def who(ctx: Context) -> str:
        assert ctx.principal is not None
        return f"{ctx.principal.subject} {ctx.headers.get('x-a')}"

    with pytest.raises(ValueError, match="not an OAuth scope token"):
        server.tool(name="bad", required_scopes=["two words"])(lambda: None)
    assert server.tool_scopes("write") == ("files:write",)
    call = Request(1, "tools/call", {"name": "write", "arguments": {"path": "p"}})
    reader = LocalEnv(principal=Principal("alice", scopes=["files:read"]))
    with pytest.raises(JsonRpcError) as refused:
        await handle_request(server, call, reader)
    assert refused.value.code == -32051
    assert refused.value.data == {"requiredScopes": ["files:write"], "missingScopes": ["files:write"]}
    writer = LocalEnv(principal=Principal("alice", scopes=["files:write"]))
    assert (await handle_request(server, call, writer))["content"][0]["text"] == "wrote p"
    # No principal (no authentication, stdio): the scopes do not apply.
    assert (await handle_request(server, call, LocalEnv()))["content"][0]["text"] == "wrote p"
    env = LocalEnv(principal=Principal("alice"), headers={"x-a": "1"})
    who_call = Request(2, "tools/call", {"name": "who", "arguments": {}})
    assert (await handle_request(server, who_call, env))["content"][0]["text"] == "alice 1"


async def test_concurrent_unknown_kids_share_one_jwks_fetch() -> None:
    with identity_provider() as idp:
        verifier = jwt_verifier(idp, min_refresh_interval=0.0)
        tokens = [idp.token(f"user{i}", audience=RESOURCE) for i in range(20)]
        seen: list[Principal | None] = []

        async def verify(token: str) -> None:
            seen.append(await verifier.verify_token(token))

        async with trio.open_nursery() as nursery:
            for token in tokens:
                nursery.start_soon(verify, token)
        assert len(seen) == 20 and all(p is not None for p in seen)
        assert idp.requests["/jwks"] == 1
        with pytest.raises(InvalidToken, match="not a JWT"):
            await verifier.verify_token("x")
