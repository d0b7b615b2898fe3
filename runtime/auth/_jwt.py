"""`JWTVerifier`: bearer tokens that are JWTs signed by the authorization server (RFC 9068 style).

The signature is checked with PyJWT (and ``cryptography``) against the issuer's JWKS, never by hand;
then ``exp`` / ``nbf`` (with ``leeway`` seconds of clock skew), ``iss``, and ``aud``, which must name
this server (RFC 8707: a token minted for another resource is refused even when everything else is
right). Only asymmetric algorithms are accepted: ``none`` and the HMAC family would let whoever knows
the shared secret, or nobody, mint tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ._fetch import DEFAULT_FETCH_TIMEOUT
from ._jwks import JwksCache
from ._principal import Principal
from ._verifier import InvalidToken

#: The asymmetric JWS algorithms accepted by default.
DEFAULT_ALGORITHMS: Final = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
_REFUSED_ALGORITHMS: Final = frozenset({"none", "HS256", "HS384", "HS512"})


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 8693 / 9068: one space-separated string) or ``scp`` (a list, as some issuers send)."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset()


def principal_of(claims: Mapping[str, Any]) -> Principal:
    """The `Principal` a verified claim set names (``InvalidToken`` without a subject)."""
    subject = claims.get("sub")
    client_id = claims.get("client_id", claims.get("azp"))
    if not isinstance(subject, str) or not subject:
        if not isinstance(client_id, str) or not client_id:
            raise InvalidToken("the token names no subject (sub)")
        subject = client_id  # a client-credentials token: the client is the subject
    issuer = claims.get("iss")
    exp = claims.get("exp")
    return Principal(
        subject=subject,
        issuer=issuer if isinstance(issuer, str) else None,
        client_id=client_id if isinstance(client_id, str) else None,
        scopes=scopes_of(claims),
        claims=dict(claims),
        expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
    )


class JWTVerifier:
    """Verify JWT access tokens against the JWKS at ``jwks_url``.

    ``issuer`` is the exact ``iss`` expected; ``audience`` the resource identifier(s) this server
    answers to (usually its canonical URL, ``https://mcp.example.com/mcp``). The JWKS is cached for
    ``jwks_max_age`` seconds and fetched again when a token names an unknown key id, at most once per
    ``min_refresh_interval`` seconds.
    """

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str | Sequence[str],
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        jwks_max_age: float = 3600.0,
        min_refresh_interval: float = 30.0,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        import jwt  # the auth extra: fail at configuration time, not on the first request

        self._jwt = jwt
        algorithms = tuple(algorithms)
        refused = sorted(set(algorithms) & _REFUSED_ALGORITHMS)
        if refused:
            raise ValueError(f"JWTVerifier: algorithms {refused} are not accepted (use asymmetric ones)")
        if not algorithms:
            raise ValueError("JWTVerifier: give at least one algorithm")
        if not issuer:
            raise ValueError("JWTVerifier: issuer is required (the exact iss of your tokens)")
        audiences = [audience] if isinstance(audience, str) else list(audience)
        if not audiences or not all(audiences):
            raise ValueError("JWTVerifier: audience is required (this server's resource URL)")
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = algorithms
        self.leeway = leeway
        self.jwks = JwksCache(
            jwks_url, max_age=jwks_max_age, min_refresh_interval=min_refresh_interval, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"JWTVerifier(jwks_url={self.jwks.url!r}, issuer={self.issuer!r}, audience={self.audiences!r})"

    async def verify_token(self, token: str) -> Principal | None:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(f"the token's algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise InvalidToken("the token was signed with a key the issuer does not publish")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token was issued for another resource (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer (iss)") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is invalid: {exc}") from None
        return principal_of(claims)
