"""A test identity provider: real keys, a real JWKS over real HTTP on 127.0.0.1, real signatures.

Tokens are minted with PyJWT and ``cryptography`` keys (RSA and EC), the same JOSE library the
server verifies with; nothing of the crypto is mocked. The JWKS and an RFC 7662 introspection
endpoint are served by a stdlib HTTP server in a thread, so the server under test fetches them as it
would from any authorization server. Keys rotate on demand (``rotate``), and ``requests`` counts what
the server fetched.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import attrs
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

INTROSPECTION_CLIENT = ("mcp-resource-server", "s3cret-of-the-resource-server")


@attrs.define
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str = "RS256") -> SigningKey:
    if alg.startswith("RS"):
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(f"k-{uuid.uuid4().hex[:8]}", alg, private)


@attrs.define
class IdentityProvider:
    """Issues tokens for ``issuer``; publishes ``keys`` at ``jwks_url``; introspects opaque tokens."""

    issuer: str
    base_url: str
    keys: list[SigningKey]
    #: opaque token -> the introspection answer for it
    opaque: dict[str, dict[str, Any]] = attrs.Factory(dict)
    requests: dict[str, int] = attrs.Factory(dict)

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks"

    @property
    def introspection_url(self) -> str:
        return self.base_url + "/introspect"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}

    def rotate(self, alg: str = "ES256") -> SigningKey:
        """A new signing key replaces every old one (the old tokens stop verifying)."""
        key = new_key(alg)
        self.keys = [key]
        return key

    def claims(
        self,
        subject: str,
        *,
        audience: str | Sequence[str],
        scopes: Sequence[str] = (),
        lifetime: float = 300.0,
        not_before: float | None = None,
        issuer: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        now = time.time()
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": int(now),
            "exp": int(now + lifetime),
            "scope": " ".join(scopes),
            "client_id": f"{subject}-app",
            "jti": uuid.uuid4().hex,
            **extra,
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        return claims

    def token(
        self, subject: str, *, key: SigningKey | None = None, kid: str | None = None, **how: Any
    ) -> str:
        """A JWT for ``subject`` signed with ``key`` (default: the current one)."""
        key = key or self.keys[0]
        headers = {"kid": kid or key.kid}
        return jwt.encode(self.claims(subject, **how), key.private, algorithm=key.alg, headers=headers)

    def opaque_token(self, subject: str, *, active: bool = True, **how: Any) -> str:
        """A random token the introspection endpoint knows (``active`` or not)."""
        token = secrets.token_urlsafe(24)
        self.opaque[token] = (
            {"active": active, **self.claims(subject, **how)} if active else {"active": False}
        )
        return token


def _handler(idp: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            idp.requests[self.path] = idp.requests.get(self.path, 0) + 1
            if self.path == "/jwks":
                self._json(200, idp.jwks())
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            idp.requests[self.path] = idp.requests.get(self.path, 0) + 1
            if self.path != "/introspect":
                self._json(404, {"error": "not found"})
                return
            expected = base64.b64encode(":".join(INTROSPECTION_CLIENT).encode()).decode()
            if self.headers.get("authorization") != f"Basic {expected}":
                self._json(401, {"error": "invalid_client"})
                return
            length = int(self.headers.get("content-length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            token = form.get("token", [""])[0]
            self._json(200, idp.opaque.get(token, {"active": False}))

    return Handler


@contextmanager
def identity_provider(alg: str = "RS256") -> Iterator[IdentityProvider]:
    """A running identity provider on a free loopback port (stopped on exit)."""
    idp = IdentityProvider(issuer="", base_url="", keys=[new_key(alg)])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    port = httpd.server_address[1]
    idp.base_url = f"http://127.0.0.1:{port}"
    idp.issuer = idp.base_url
    thread = threading.Thread(target=httpd.serve_forever, name="test-idp", daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
