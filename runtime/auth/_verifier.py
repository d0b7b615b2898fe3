"""`TokenVerifier`: the behaviour every way of checking a bearer token implements.

Like the backends, it is a ``typing.Protocol``: a plain class with the method is one (no base class,
no registration). The built-in ones are ``JWTVerifier`` (signed JWTs against the issuer's JWKS) and
``IntrospectionVerifier`` (RFC 7662, asking the authorization server). A verifier says *who* the
token is for; which scopes a request needs, and the HTTP answers, are the transport's business.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._principal import Principal


class InvalidToken(Exception):
    """The token is not acceptable here: expired, not yet valid, badly signed, for another audience or
    issuer, inactive. The message is the ``error_description`` of the 401: say what is wrong with the
    token, never anything about the server's keys or internals."""


class VerifierUnavailable(Exception):
    """The verifier could not decide (the JWKS or introspection endpoint is down or answered
    nonsense). Answered 503, not 401: the client's token may be perfectly good."""


@runtime_checkable
class TokenVerifier(Protocol):
    """Turns a bearer token into a `Principal`.

    Return the principal for a good token; return None, or raise `InvalidToken` with a reason, for a
    bad one; raise `VerifierUnavailable` when the answer cannot be known right now. It is called on
    every HTTP request of an authenticated server, from the trio event loop: never block it (use an
    async HTTP client, cache what you fetch).
    """

    async def verify_token(self, token: str) -> Principal | None: ...
