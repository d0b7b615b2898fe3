"""``benchmarks/server.py --auth``: what verifying a bearer token costs a ``tools/call`` over HTTP.

The same server (``add``, a trivial sync tool) served twice in one process on our trio + h11 HTTP
server: once without authentication, once with ``AuthSettings`` and a ``JWTVerifier`` (RS256, the JWKS
served on 127.0.0.1 by a stdlib thread, fetched once and then cached, as in production). One httpx2
client per side drives 2025-11-25 sessions with JSON answers: sequential calls (1 client) and 8
concurrent clients. Rounds alternate between the sides; each figure is the median of the rounds.
Also the verifier alone: ``verify_token`` calls per second on a cached JWKS (the signature check is
what remains). Printed as ratios auth/plain; results in benchmarks/results/auth.json.
"""

from __future__ import annotations

import functools
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import jwt
import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mcpvisor.runtime.auth import AuthSettings, JWTVerifier
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import serve_http

RESOURCE = "https://bench.example/mcp"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "b", "version": "1"},
    },
}
JSON = {"accept": "application/json", "content-type": "application/json"}


def build() -> Server:
    server = Server("auth-bench")

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    return server


class Issuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = ""

    def jwks(self) -> bytes:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "RS256", "use": "sig"}]}).encode()

    def token(self) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": "bench", "aud": RESOURCE, "iat": now, "exp": now + 3600}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "bench"})


@contextmanager
def issuer() -> Iterator[Issuer]:
    found = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = found.jwks()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield found
    finally:
        httpd.shutdown()
        httpd.server_close()


@asynccontextmanager
async def served(auth: AuthSettings | None) -> AsyncIterator[str]:
    async with start_server(build(), auth=auth) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0, json_response=True))
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def open_session(client: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, str]:
    opened = await client.post(url, json=INIT, headers=headers)
    assert opened.status_code == 200, opened.text
    session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
    session["mcp-protocol-version"] = "2025-11-25"
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await client.post(url, json=done, headers=session)).status_code == 202
    return session


async def calls_per_s(url: str, token: str | None, clients: int, calls: int) -> float:
    headers = dict(JSON) if token is None else {**JSON, "authorization": f"Bearer {token}"}
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as client:
        sessions = [await open_session(client, url, headers) for _ in range(clients)]

        async def drive(session: dict[str, str], n: int) -> None:
            for i in range(n):
                body = {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call"}
                body["params"] = {"name": "add", "arguments": {"a": i, "b": 1}}
                answer = await client.post(url, json=body, headers=session)
                assert answer.status_code == 200 and "result" in answer.json(), answer.text

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for session in sessions:
                nursery.start_soon(drive, session, calls // clients)
        return (calls // clients * clients) / (time.perf_counter() - started)


async def verifies_per_s(verifier: JWTVerifier, token: str, n: int) -> float:
    await verifier.verify_token(token)  # fetch the JWKS once
    started = time.perf_counter()
    for _ in range(n):
        await verifier.verify_token(token)
    return n / (time.perf_counter() - started)


async def measure(quick: bool) -> dict[str, Any]:
    calls, rounds = (300, 3) if quick else (2000, 5)
    out: dict[str, Any] = {"quick": quick, "calls": calls, "rounds": rounds}
    with issuer() as idp:
        verifier = JWTVerifier(jwks_url=idp.url + "/jwks", issuer=idp.url, audience=RESOURCE)
        auth = AuthSettings(verifier=verifier, resource_url=RESOURCE, authorization_servers=[idp.url])
        token = idp.token()
        out["verify_token_per_s"] = await verifies_per_s(verifier, token, calls)
        async with served(None) as plain_url, served(auth) as auth_url:
            for clients in (1, 8):
                await calls_per_s(plain_url, None, clients, calls // 5)  # warm-up
                await calls_per_s(auth_url, token, clients, calls // 5)
                plain: list[float] = []
                authed: list[float] = []
                for _ in range(rounds):
                    plain.append(await calls_per_s(plain_url, None, clients, calls))
                    authed.append(await calls_per_s(auth_url, token, clients, calls))
                p, a = statistics.median(plain), statistics.median(authed)
                out[f"plain/{clients}"] = {"per_s": p, "rounds": plain}
                out[f"jwt/{clients}"] = {"per_s": a, "rounds": authed}
                out[f"ratio/{clients}"] = a / p
    return out


def report(out: dict[str, Any]) -> None:
    print(f"{'tools/call over HTTP (JSON answers)':40} {'plain':>10} {'JWT':>10} {'JWT/plain':>10}")
    for clients in (1, 8):
        p, a = out[f"plain/{clients}"]["per_s"], out[f"jwt/{clients}"]["per_s"]
        print(f"{f'calls/s, {clients} client(s)':40} {p:10.0f} {a:10.0f} {a / p:10.2f}")
    print(f"{'JWTVerifier.verify_token/s (cached JWKS)':40} {out['verify_token_per_s']:10.0f}")
