"""The resource server's decision for one HTTP request: a `Principal`, or the refusal to answer.

Sans-IO apart from the verifier call, so the transport only maps a `Refusal` onto its response:

- no (or a non-Bearer) ``Authorization`` header: 401 with ``WWW-Authenticate: Bearer
  resource_metadata="...", scope="..."`` and no error code (RFC 6750 section 3.1: the client just has
  not authenticated yet);
- a token the verifier refuses: 401 ``error="invalid_token"`` with a description;
- a good token short of the scopes the request needs: 403 ``error="insufficient_scope"`` naming them
  (MCP's step-up authorization: the client asks for a token with more scopes);
- a verifier that cannot decide (its authorization server is down): 503, no challenge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

import attrs

from ._principal import Principal
from ._settings import AuthSettings
from ._verifier import InvalidToken, VerifierUnavailable

logger = logging.getLogger("mcpvisor.runtime.auth")

#: Seconds a principal's ``expires_at`` may lie in the past (clock skew), as ``JWTVerifier``'s default
#: ``leeway``: the safety net for custom verifiers must not refuse what the built-in ones accept.
CLOCK_SKEW = 30.0


@attrs.frozen
class Refusal:
    status: int
    message: str
    #: The ``WWW-Authenticate`` value (None for a 503).
    challenge: str | None = None


def _quoted(value: str) -> str:
    # auth-param values are quoted-strings; keep descriptions to plain printable text (RFC 6750 3).
    safe = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "'" for c in value)
    return f'"{safe}"'


def challenge(
    settings: AuthSettings,
    *,
    error: str | None = None,
    description: str | None = None,
    scopes: Iterable[str] = (),
) -> str:
    """A ``WWW-Authenticate: Bearer ...`` value pointing at the metadata document."""
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
    if description is not None:
        params.append(("error_description", description))
    scope = " ".join(scopes)
    if scope:
        params.append(("scope", scope))
    params.append(("resource_metadata", settings.metadata_url))
    return "Bearer " + ", ".join(f"{name}={_quoted(value)}" for name, value in params)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or "," in token:
        return None
    return token


async def authenticate(settings: AuthSettings, headers: Mapping[str, str]) -> Principal | Refusal:
    """Who sent this request, or why it is refused (see the module docstring)."""
    token = bearer_token(headers)
    if token is None:
        return Refusal(
            401,
            "Unauthorized: send an OAuth bearer token (Authorization: Bearer ...)",
            challenge(settings, scopes=settings.required_scopes),
        )
    try:
        principal = await settings.verifier.verify_token(token)
    except InvalidToken as exc:
        return _invalid(settings, str(exc) or "the token is not valid here")
    except VerifierUnavailable as exc:
        # The detail (which endpoint, what it answered) is for the operator, not for every client.
        logger.warning("cannot verify a bearer token: %s", exc)
        return Refusal(503, "Service Unavailable: the token cannot be verified right now; retry later")
    if principal is None:
        return _invalid(settings, "the token is not valid here")
    if principal.expires_at is not None and principal.expires_at + CLOCK_SKEW < time.time():
        return _invalid(settings, "the token has expired")
    return check_scopes(settings, principal, settings.required_scopes) or principal


def _invalid(settings: AuthSettings, description: str) -> Refusal:
    return Refusal(
        401,
        f"Unauthorized: {description}",
        challenge(settings, error="invalid_token", description=description, scopes=settings.required_scopes),
    )


def check_scopes(settings: AuthSettings, principal: Principal, required: Iterable[str]) -> Refusal | None:
    """None when ``principal`` holds every scope of ``required``; else the 403 asking for them."""
    needed = [*dict.fromkeys([*settings.required_scopes, *required])]
    missing = principal.missing_scopes(needed)
    if not missing:
        return None
    description = f"this request needs the scopes: {' '.join(missing)}"
    return Refusal(
        403,
        f"Forbidden: insufficient scope: {description}",
        challenge(settings, error="insufficient_scope", description=description, scopes=needed),
    )
