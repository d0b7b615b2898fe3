"""One lazily opened Redis client per backend object, driven natively from trio.

Client choice: ``valkey-glide`` (its Python layer runs on anyio, so it works under trio; the
protocol work happens in its Rust core). ``coredis`` (anyio-native) also works under trio; measured
on this machine kind against a local redis-server, 200-byte values, under ``trio.run``:

=====================  =========================  ==============================
client                 sequential SET+GET ops/s   50 concurrent trio tasks ops/s
=====================  =========================  ==============================
valkey-glide 2.6       ~5,800-6,100               ~44,000-49,000
coredis 6.9            ~5,000-5,100               ~11,300
=====================  =========================  ==============================

glide multiplexes every concurrent request over one connection, which is what a server with many
sessions does. It also fits our lifetime model: ``GlideClient.create`` is a plain awaitable, so the
client can be opened on the first operation by whichever task gets there and closed from
``aclose()``. coredis 6 ties a client's life to an ``async with`` block that owns a task group, which
under trio's structured concurrency cannot be entered by one operation and left by another.

``redis-py``'s asyncio client does not run under trio, and a thread-offloaded client would pay a
thread hop per operation, so neither was used. glide is imported only when a Redis backend connects:
``mcpvisor.backends`` itself never needs it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import attrs
import trio

from ._errors import BackendClosed, BackendError, UnsupportedBackendURL

if TYPE_CHECKING:
    from glide import GlideClient, Script

#: Seconds glide waits for one reply, and for the connection to open, before failing. glide's defaults
#: (250 ms for a reply) are too short for a loaded machine; a slow reply is better than a spurious
#: error. One setting for both, so a caller who wants to fail fast (or a test) gets it everywhere.
DEFAULT_REQUEST_TIMEOUT: Final = 5.0

_SCHEMES: Final = ("redis", "rediss")


@attrs.frozen
class RedisAddress:
    """What a ``redis://`` / ``rediss://`` URL says: where to connect and as whom."""

    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """``redis[s]://[[user]:password@]host[:port][/db]``; ``UnsupportedBackendURL`` otherwise."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise UnsupportedBackendURL(f"not a Redis URL (redis:// or rediss://): {url!r}")
        try:
            port = parts.port or 6379
        except ValueError as exc:
            raise UnsupportedBackendURL(f"bad port in Redis URL {url!r}") from exc
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise UnsupportedBackendURL(f"the path of a Redis URL is a database number, got {url!r}")
        if parts.query or parts.fragment:
            raise UnsupportedBackendURL(f"Redis URL options are not supported: {url!r}")
        unquote = urllib.parse.unquote
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=int(path) if path else 0,
            tls=parts.scheme == "rediss",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def url(self) -> str:
        """The URL back, password included (for a second connection to the same server)."""
        scheme = "rediss" if self.tls else "redis"
        quote = urllib.parse.quote
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"

    def redacted(self) -> str:
        """The URL without the password, for messages and reprs."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"


def check_prefix(prefix: str) -> str:
    """Keys are ``{prefix}:...``: braces make the prefix end unambiguous (and one cluster hash slot)."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"prefix must be a non-empty string without braces, got {prefix!r}")
    return "{" + prefix + "}"


class RedisConnection:
    """The glide client of one backend object: opened on first use, closed by ``aclose``.

    Scripts are registered by source text; glide sends ``EVALSHA`` and loads the script itself when
    the server does not know it yet (after a restart or ``SCRIPT FLUSH``).
    """

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        channels: Sequence[str] = (),
    ) -> None:
        self.address = RedisAddress.parse(url)
        #: Pub/sub channels this connection subscribes to when it opens (glide subscribes a client at
        #: creation); such a connection only reads them (``next_message``).
        self._channels = tuple(channels)
        self._owner = owner
        self._request_timeout = request_timeout
        self._client: GlideClient | None = None
        self._scripts: dict[str, Script] = {}
        self._lock = trio.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def closed_error(self) -> BackendClosed:
        return BackendClosed(f"{self._owner} ({self.address.redacted()}) was used after aclose()")

    async def client(self) -> GlideClient:
        if self._closed:
            raise self.closed_error()
        client = self._client
        if client is not None:
            return client
        async with self._lock:
            if self._client is not None:  # another task connected while we waited for the lock
                return self._client
            client = await self._connect()
            if self.closed:  # aclose() ran while we were connecting: nobody else will close it
                await client.close()
                raise self.closed_error()
            self._client = client
            return client

    async def _connect(self) -> GlideClient:
        from glide import (
            AdvancedGlideClientConfiguration,
            GlideClient,
            GlideClientConfiguration,
            GlideError,
            Logger,
            LogLevel,
            NodeAddress,
            ServerCredentials,
        )

        # glide's Rust core logs every failed connection attempt to the console at WARN by default; we
        # raise a BackendError that says the same, so keep its console for errors. ``init`` leaves a
        # logger the application configured itself alone.
        Logger.init(LogLevel.ERROR)
        address = self.address
        credentials = None
        if address.password is not None:
            credentials = ServerCredentials(password=address.password, username=address.username)
        config = GlideClientConfiguration(
            [NodeAddress(address.host, address.port)],
            use_tls=address.tls,
            credentials=credentials,
            database_id=address.db,
            pubsub_subscriptions=self._subscriptions(),
            request_timeout=int(self._request_timeout * 1000),
            client_name=f"mcpvisor-{self._owner}".replace(" ", "-"),  # CLIENT SETNAME refuses spaces
            advanced_config=AdvancedGlideClientConfiguration(
                connection_timeout=int(self._request_timeout * 1000)
            ),
        )
        try:
            return await GlideClient.create(config)
        except GlideError as exc:
            raise BackendError(
                f"{self._owner}: cannot connect to Redis at {address.redacted()}: {exc}"
            ) from exc

    def _subscriptions(self) -> object:
        if not self._channels:
            return None
        from glide import GlideClientConfiguration

        modes = GlideClientConfiguration.PubSubChannelModes
        return GlideClientConfiguration.PubSubSubscriptions(
            channels_and_patterns={modes.Exact: set(self._channels)}, callback=None, context=None
        )

    async def publish(self, channel: str, message: bytes) -> int:
        """``PUBLISH``: how many subscribers (connections, this server's count) received it."""
        client = await self.client()
        try:
            return await client.publish(message, channel)
        except Exception as exc:
            if self._closed:
                raise self.closed_error() from exc
            raise

    async def next_message(self) -> tuple[str, bytes]:
        """The next message on a subscribed channel (waits; cancellable): ``(channel, payload)``."""
        client = await self.client()
        try:
            msg = await client.get_pubsub_message()
        except Exception as exc:
            if self._closed:
                raise self.closed_error() from exc
            raise
        channel = msg.channel
        payload = msg.message
        return (
            channel.decode() if isinstance(channel, bytes) else str(channel),
            payload if isinstance(payload, bytes) else str(payload).encode(),
        )

    async def script(self, source: str, keys: Sequence[str | bytes], args: Sequence[str | bytes]) -> object:
        """Run a Lua script in one round trip (``EVALSHA``, loading it on the first use)."""
        client = await self.client()
        script = self._scripts.get(source)
        if script is None:
            from glide import Script

            script = self._scripts[source] = Script(source)  # type: ignore[no-untyped-call]
        try:
            return await client.invoke_script(script, keys=list(keys), args=list(args))
        except Exception as exc:
            if self._closed:  # failed because aclose() closed the client under it
                raise self.closed_error() from exc
            raise

    async def get(self, key: str) -> bytes | None:
        client = await self.client()
        try:
            return await client.get(key)
        except Exception as exc:
            if self._closed:
                raise self.closed_error() from exc
            raise

    async def aclose(self) -> None:
        """Idempotent. Requests in flight on other tasks fail with ``BackendClosed``."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        self._scripts.clear()
        if client is not None:
            await client.close()
