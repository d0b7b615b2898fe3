"""The one way the verifiers reach their authorization server: an async HTTP client on trio.

httpx2 (the HTTP client the official MCP SDK depends on) runs natively under trio through anyio, so
a JWKS or introspection fetch never blocks the event loop the whole server shares. It is imported
here, lazily, so a server without authentication needs none of the ``auth`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._verifier import VerifierUnavailable

#: What a fetch may take, in seconds, before the verifier gives up (503, the token is not refused).
DEFAULT_FETCH_TIMEOUT = 5.0
#: Bigger JWKS or introspection answers are refused: an authorization server sends a few KiB.
MAX_ANSWER_BYTES = 1024 * 1024


def _httpx() -> Any:
    try:
        import httpx2
    except ImportError as exc:  # pragma: no cover - the auth extra is missing
        raise ImportError("token verification needs the auth extra: pip install 'mcpvisor[auth]'") from exc
    return httpx2


def require_client_library() -> None:
    """Fail at configuration time, not on the first request, when the auth extra is missing."""
    _httpx()


def new_client(timeout: float) -> Any:
    """An ``httpx2.AsyncClient`` that follows no redirects (a JWKS that moves is a config change)."""
    return _httpx().AsyncClient(timeout=timeout, follow_redirects=False)


class SharedClient:
    """One ``httpx2.AsyncClient`` per verifier, so requests to the authorization server reuse their
    connections (an introspection per HTTP request must not pay a TCP and TLS handshake each time).

    A client belongs to the trio run that made it (its connection pool does); a verifier used from
    another run (a restarted server in the same process, a test) gets a new one.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: Any = None
        self._run: object = None

    def get(self) -> Any:
        import trio

        run = trio.lowlevel.current_root_task()
        if self._client is None or self._run is not run:
            self._client = new_client(self.timeout)
            self._run = run
        return self._client


async def fetch_json(
    client: Any,
    method: str,
    url: str,
    *,
    what: str,
    data: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """``method url`` answered 200 with a JSON object, or `VerifierUnavailable` naming ``what``."""
    httpx2 = _httpx()
    try:
        response = await client.request(
            method, url, data=data, auth=auth, headers={"accept": "application/json"}
        )
    except httpx2.HTTPError as exc:
        raise VerifierUnavailable(f"{what} at {url} unreachable: {exc}") from exc
    if response.status_code != 200:
        raise VerifierUnavailable(f"{what} at {url} answered HTTP {response.status_code}")
    if len(response.content) > MAX_ANSWER_BYTES:
        raise VerifierUnavailable(f"{what} at {url} answered more than {MAX_ANSWER_BYTES} bytes")
    try:
        body = response.json()
    except ValueError as exc:
        raise VerifierUnavailable(f"{what} at {url} answered something that is not JSON") from exc
    if not isinstance(body, dict):
        raise VerifierUnavailable(f"{what} at {url} answered JSON that is not an object")
    return body
