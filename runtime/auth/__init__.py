"""MCP authorization for the HTTP transport: the server as an OAuth 2.1 resource server.

See docs/auth.md. ``AuthSettings`` turns it on; a ``TokenVerifier`` (``JWTVerifier``,
``IntrospectionVerifier``, or a plain class of yours) turns a bearer token into a ``Principal``, which
tools read as ``ctx.principal`` and which owns the sessions, state handles and tasks it creates.
The verifiers need the ``auth`` extra (PyJWT with cryptography, httpx2); nothing here imports it
until a verifier is built.
"""

from ._gate import Refusal, authenticate, bearer_token, challenge, check_scopes
from ._introspection import IntrospectionVerifier
from ._jwks import JwksCache
from ._jwt import JWTVerifier
from ._principal import Principal
from ._settings import WELL_KNOWN, AuthSettings
from ._verifier import InvalidToken, TokenVerifier, VerifierUnavailable

__all__ = [
    "WELL_KNOWN",
    "AuthSettings",
    "IntrospectionVerifier",
    "InvalidToken",
    "JWTVerifier",
    "JwksCache",
    "Principal",
    "Refusal",
    "TokenVerifier",
    "VerifierUnavailable",
    "authenticate",
    "bearer_token",
    "challenge",
    "check_scopes",
]
