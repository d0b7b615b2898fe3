"""`IntrospectionVerifier`: opaque tokens, checked by asking the authorization server (RFC 7662).

Every token is POSTed to the introspection endpoint (authenticated with the resource server's own
client credentials, HTTP Basic, when given); ``"active": false`` refuses it. On an active answer the
resource server still checks what it can itself: ``exp`` / ``nbf``, the issuer when configured, and
the audience: an active token minted for another resource is refused (RFC 8707), and one whose answer
names no audience at all is refused too unless ``require_audience=False`` (some servers omit
``aud``). Answers are not cached; the connections to the endpoint are kept and reused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ._fetch import DEFAULT_FETCH_TIMEOUT, SharedClient, fetch_json, require_client_library
from ._jwt import principal_of
from ._principal import Principal
from ._verifier import InvalidToken


class IntrospectionVerifier:
    def __init__(
        self,
        *,
        introspection_url: str,
        audience: str | Sequence[str],
        client_id: str | None = None,
        client_secret: str | None = None,
        issuer: str | None = None,
        require_audience: bool = True,
        leeway: float = 30.0,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        if (client_id is None) != (client_secret is None):
            raise ValueError("IntrospectionVerifier: give both client_id and client_secret, or neither")
        audiences = [audience] if isinstance(audience, str) else list(audience)
        if not audiences or not all(audiences):
            raise ValueError("IntrospectionVerifier: audience is required (this server's resource URL)")
        self.introspection_url = introspection_url
        self.audiences = audiences
        self.issuer = issuer
        self.require_audience = require_audience
        self.leeway = leeway
        self.timeout = timeout
        self._credentials = (client_id, client_secret) if client_id is not None and client_secret else None
        require_client_library()
        self._http = SharedClient(timeout)

    def __repr__(self) -> str:  # never the client secret
        return f"IntrospectionVerifier({self.introspection_url!r}, audience={self.audiences!r})"

    async def verify_token(self, token: str) -> Principal | None:
        answer = await fetch_json(
            self._http.get(),
            "POST",
            self.introspection_url,
            what="token introspection",
            data={"token": token, "token_type_hint": "access_token"},
            auth=self._credentials,
        )
        if answer.get("active") is not True:
            raise InvalidToken("the token is not active")
        now = time.time()
        exp = answer.get("exp")
        if isinstance(exp, int | float) and now > exp + self.leeway:
            raise InvalidToken("the token has expired")
        nbf = answer.get("nbf")
        if isinstance(nbf, int | float) and now + self.leeway < nbf:
            raise InvalidToken("the token is not valid yet (nbf in the future)")
        if self.issuer is not None and answer.get("iss") != self.issuer:
            raise InvalidToken("the token comes from another issuer (iss)")
        aud = answer.get("aud")
        named = [aud] if isinstance(aud, str) else []
        if isinstance(aud, list):
            named = [a for a in aud if isinstance(a, str)]
        if named and not set(named) & set(self.audiences):
            raise InvalidToken("the token was issued for another resource (aud)")
        if not named and self.require_audience:
            raise InvalidToken("the introspection answer names no audience (aud) for the token")
        return principal_of(answer)
