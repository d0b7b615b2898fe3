"""``mcpvisor demo --resource-url ... --auth-*``: the real command protects the demo (JWKS and
introspection), and bad combinations are usage errors (exit 2) that say what to change."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from typing import Any

import pytest
from _demo_process import start_demo
from _http_messages import INIT
from _identity_provider import INTROSPECTION_CLIENT, identity_provider

from mcpvisor.cli import main

RESOURCE = "https://mcp.cli.example/mcp"


def post(url: str, token: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(INIT).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
            proc.wait()


def test_the_demo_with_a_jwks_refuses_strangers_and_serves_token_holders() -> None:
    with identity_provider() as idp:
        proc, url = start_demo(
            "--port", "0", "--resource-url", RESOURCE, "--auth-issuer", idp.issuer,
            "--auth-jwks-url", idp.jwks_url, "--auth-required-scopes", "mcp:use,mcp:demo",
        )  # fmt: skip
        try:
            status, headers, _ = post(url, None)
            assert status == 401
            challenge = headers["www-authenticate"]
            assert 'scope="mcp:use mcp:demo"' in challenge
            assert (
                'resource_metadata="https://mcp.cli.example/.well-known/oauth-protected-resource/mcp"'
                in challenge
            )
            meta_url = url.removesuffix("/mcp") + "/.well-known/oauth-protected-resource/mcp"
            with urllib.request.urlopen(meta_url, timeout=10) as response:
                document = json.load(response)
            assert document["resource"] == RESOURCE and document["authorization_servers"] == [idp.issuer]
            token = idp.token("alice", audience=RESOURCE, scopes=["mcp:use", "mcp:demo"])
            status, headers, body = post(url, token)
            assert status == 200 and headers["mcp-session-id"], body
            short = idp.token("alice", audience=RESOURCE, scopes=["mcp:use"])
            assert post(url, short)[0] == 403
        finally:
            stop(proc)


def test_the_demo_with_introspection_reads_the_secret_from_the_environment() -> None:
    client_id, secret = INTROSPECTION_CLIENT
    with identity_provider() as idp:
        os.environ["MCPVISOR_AUTH_CLIENT_SECRET"] = secret  # inherited by the demo process only
        try:
            proc, url = start_demo(
                "--port", "0", "--resource-url", RESOURCE, "--auth-issuer", idp.issuer,
                "--auth-introspection-url", idp.introspection_url, "--auth-client-id", client_id,
            )  # fmt: skip
        finally:
            del os.environ["MCPVISOR_AUTH_CLIENT_SECRET"]
        try:
            assert post(url, idp.opaque_token("alice", audience=RESOURCE))[0] == 200
            assert post(url, idp.opaque_token("alice", active=False))[0] == 401
            assert idp.requests["/introspect"] == 2  # authenticated with the secret, or it would be 503
        finally:
            stop(proc)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--transport", "stdio", "--resource-url", RESOURCE], "--transport http only"),
        (["--auth-jwks-url", "https://idp.example/jwks"], "--resource-url is required"),
        (["--resource-url", RESOURCE], "exactly one of --auth-jwks-url and --auth-introspection-url"),
        (["--resource-url", RESOURCE, "--auth-jwks-url", "https://idp.example/jwks"], "needs --auth-issuer"),
        (
            [
                "--resource-url",
                "mcp.example/mcp",
                "--auth-issuer",
                "https://idp.example",
                "--auth-jwks-url",
                "https://idp.example/jwks",
            ],
            "not an absolute http(s) URL",
        ),
        (
            [
                "--resource-url",
                RESOURCE,
                "--auth-introspection-url",
                "https://idp.example/i",
                "--auth-client-id",
                "me",
                "--auth-issuer",
                "https://idp.example",
            ],
            "needs its secret",
        ),
    ],
)
def test_bad_auth_flags_are_usage_errors(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCPVISOR_AUTH_CLIENT_SECRET", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *flags])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
