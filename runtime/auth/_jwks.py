"""`JwksCache`: an authorization server's signing keys, fetched once and refreshed when they rotate.

Fetched on first use, kept ``max_age`` seconds, and fetched again early when a token names a key id
(``kid``) the cached set lacks: that is how a rotation shows. The early fetches are rate limited
(``min_refresh_interval``), so a stream of tokens with made-up key ids costs the authorization
server one request per interval, not one per token; concurrent requests share one fetch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from ._fetch import DEFAULT_FETCH_TIMEOUT, fetch_json, new_client
from ._verifier import VerifierUnavailable

logger = logging.getLogger("mcpvisor.runtime.auth")


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        max_age: float = 3600.0,
        min_refresh_interval: float = 30.0,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        if max_age <= 0 or min_refresh_interval < 0:
            raise ValueError("max_age must be > 0 and min_refresh_interval >= 0 seconds")
        self.url = url
        self.max_age = max_age
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._keys: dict[str | None, Any] = {}
        self._fetched_at: float | None = None
        self._lock: trio.Lock | None = None
        #: How many times the set was fetched (tests and operators watch rotations with it).
        self.fetches = 0

    def _now(self) -> float:
        return time.monotonic()

    async def key(self, kid: str | None) -> Any:
        """The ``jwt.PyJWK`` for ``kid`` (None: the set's only key), or None when even a fresh set
        (as fresh as the rate limit allows) lacks it."""
        now = self._now()
        if self._fetched_at is None or now - self._fetched_at >= self.max_age:
            await self._refresh(self._fetched_at)
        found = self._find(kid)
        if found is not None:
            return found
        fetched = self._fetched_at
        if fetched is not None and self._now() - fetched < self.min_refresh_interval:
            return None
        await self._refresh(fetched)
        return self._find(kid)

    def _find(self, kid: str | None) -> Any:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, seen: float | None) -> None:
        if self._lock is None:
            self._lock = trio.Lock()
        async with self._lock:
            if self._fetched_at != seen:
                return  # another request fetched meanwhile: use its answer
            import jwt

            async with new_client(self.timeout) as client:
                document = await fetch_json(client, "GET", self.url, what="JWKS")
            try:
                keys = jwt.PyJWKSet.from_dict(document).keys
            except jwt.PyJWKError as exc:
                raise VerifierUnavailable(f"JWKS at {self.url} holds no usable key: {exc}") from exc
            usable = [key for key in keys if getattr(key, "public_key_use", None) in (None, "sig")]
            self._keys = {key.key_id: key for key in usable}
            self._fetched_at = self._now()
            self.fetches += 1
            logger.info("JWKS fetched from %s: %d signing keys", self.url, len(self._keys))
