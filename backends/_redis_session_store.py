"""``RedisSessionStore``: session values as Redis strings with server-side expiry.

Key layout (``P`` is ``{prefix}``, braces included):

- ``P:s:<len(session)>:<session>:<key>``: one value, a string with ``PXAT`` expiry. The session's
  length makes the name unambiguous whatever ``:`` the session id or key contain.
- ``P:si:<session>``: the session's index, a sorted set of its keys scored by expiry (ms since the
  epoch, ``inf`` for none). ``keys()`` and ``drop_session()`` read it, never ``KEYS``/``SCAN``.
  It expires on its own an hour after its longest-lived value (``_INDEX_GRACE_MS``).
- ``P:sx``: sessions scored by the earliest expiry in their index, so ``expire()`` visits only the
  sessions that may hold dead index entries.

Every write is one Lua script (one round trip, atomic); ``get`` is a plain ``GET``. Expiry times are
computed on the Redis server's clock (``TIME``), so nodes with skewed clocks still agree.

What ``expire()`` means here: Redis removes expired values itself (a value past its TTL is never
returned, whatever we do). ``expire()`` removes the index entries of values that expired and returns
how many it removed, which is the number of values that expired since the last ``expire()`` (the
same count as the memory and SQLite stores), provided it runs at least once within the index grace
period. Index entries of a session whose whole index Redis dropped on its own are not counted.
"""

from __future__ import annotations

from typing import Final, Self, cast

from ._behaviours import DEFAULT_VALUE_TTL
from ._errors import BackendOutcomeUnknown
from ._redis_connection import DEFAULT_REQUEST_TIMEOUT, RedisConnection, check_prefix

#: An index outlives its longest-lived value by this much so ``expire()`` can count what expired.
_INDEX_GRACE_MS: Final = 3_600_000

#: A TTL longer than this (seconds) is stored as "never expires".
_FOREVER_S: Final = 1e11

#: Sessions ``expire()`` visits per script call (keeps each call short on a big server).
_EXPIRE_BATCH: Final = 500

_NOW_MS: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: value, index, sessions. ARGV: value, ttl ms ('' = never expires), key, session id.
_PUT_BODY: Final = (
    """
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], 'inf', ARGV[3])
else
  local ttl = tonumber(ARGV[2])
  -- visible while the server's ms clock <= at, i.e. strictly before put time + ttl
  local at = now + ttl - 1
  if ttl >= 1 then
    redis.call('SET', KEYS[1], ARGV[1], 'PXAT', at)
  else
    redis.call('DEL', KEYS[1])
  end
  redis.call('ZADD', KEYS[2], at, ARGV[3])
  redis.call('ZADD', KEYS[3], 'LT', at, ARGV[4])
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] == 'inf' then
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[2], tonumber(last[2]) + """
    + str(_INDEX_GRACE_MS)
    + """)
end
return 1
"""
)
_PUT: Final = _NOW_MS + _PUT_BODY

# compare_and_set: _PUT's keys and arguments, plus ARGV[5] '1' when a value is expected (ARGV[6]),
# '0' when the key must be absent. GET is Redis's own verdict on expiry (an expired key is nil).
_CAS: Final = (
    _NOW_MS
    + """
local cur = redis.call('GET', KEYS[1])
if ARGV[5] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[6] then
  return 0
end
"""
    + _PUT_BODY
)

# KEYS: value, index. ARGV: key.
_DELETE: Final = """
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
"""

# KEYS: index. ARGV: the session's value-key prefix. EXISTS is Redis's own verdict on expiry.
_KEYS: Final = """
local live = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. m) == 1 then live[#live + 1] = m end
end
return live
"""

# KEYS: index, sessions. ARGV: the session's value-key prefix, session id.
_DROP: Final = """
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do redis.call('DEL', ARGV[1] .. m) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: sessions. ARGV: index-key prefix, batch size. Returns {entries removed, sessions visited}.
_EXPIRE: Final = (
    _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, sid in ipairs(due) do
  local index = ARGV[1] .. sid
  removed = removed + redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. now)
  local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  if #first == 0 or first[2] == 'inf' then
    redis.call('ZREM', KEYS[1], sid)
  else
    redis.call('ZADD', KEYS[1], first[2], sid)
  end
end
return {removed, #due}
"""
)


def _check_ttl(ttl: float | None, what: str) -> None:
    if ttl is not None and not ttl >= 0:  # also rejects NaN
        raise ValueError(f"{what} must be a number of seconds >= 0 (or None), got {ttl!r}")


class RedisSessionStore:
    """A ``SessionStateStore`` on a Redis server, shared by every node that uses the same URL and prefix.

    The constructor only parses the URL; the connection opens on the first operation. ``prefix``
    namespaces every key (two stores with different prefixes never see each other's values; it may
    not contain braces). ``default_ttl`` applies to a ``put`` without ``ttl`` (``None``: such values
    never expire). TTLs have millisecond resolution on the server's clock and round down, so a value
    never outlives its TTL. Needs Redis >= 6.2 (``SET PXAT``, ``ZADD LT``).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "mcpvisor",
        default_ttl: float | None = DEFAULT_VALUE_TTL,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        _check_ttl(default_ttl, "default_ttl")
        self._conn = RedisConnection(url, owner="RedisSessionStore", request_timeout=request_timeout)
        self._p = check_prefix(prefix)
        self._sessions = f"{self._p}:sx"
        self._default_ttl = default_ttl

    @property
    def cluster_target(self) -> tuple[str, str]:
        """``(url, key prefix)`` of this backend's Redis, for the runtime's cluster event bus, which
        opens connections of its own to the same server under the same prefix."""
        return self._conn.address.url(), self._p

    def __repr__(self) -> str:
        return f"RedisSessionStore({self._conn.address.redacted()!r}, prefix={self._p[1:-1]!r})"

    async def _write(self, source: str, keys: list[str], args: list[str | bytes], what: str) -> object:
        """A write script. A timeout or a lost connection after sending leaves its fate unknown (a
        paused Redis runs the buffered command when it resumes): ``BackendOutcomeUnknown``, so the
        runtime never answers "failed" for a write that lands later."""
        from glide import ConnectionError as GlideConnectionError
        from glide import TimeoutError as GlideTimeoutError

        try:
            return await self._conn.script(source, keys, args)
        except (GlideTimeoutError, GlideConnectionError) as exc:
            raise BackendOutcomeUnknown(
                f"{self!r}: {what} was sent and got no answer ({type(exc).__name__}: {exc}); "
                "Redis may still apply it"
            ) from exc

    def _value_prefix(self, session_id: str) -> str:
        return f"{self._p}:s:{len(session_id)}:{session_id}:"

    def _index(self, session_id: str) -> str:
        return f"{self._p}:si:{session_id}"

    async def get(self, session_id: str, key: str) -> bytes | None:
        return await self._conn.get(self._value_prefix(session_id) + key)

    def _ttl_ms(self, value: bytes, ttl: float | None) -> str:
        """Check a write's value and TTL; the TTL argument of the scripts ('' = never expires)."""
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(
                f"session values are bytes (encode them with the codec), got {type(value).__name__}"
            )
        _check_ttl(ttl, "ttl")
        ttl = self._default_ttl if ttl is None else ttl
        # Beyond ~3,000 years (or inf) a TTL is "never": Redis rejects such expiry times.
        return "" if ttl is None or ttl > _FOREVER_S else str(int(ttl * 1000))

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        ttl_ms = self._ttl_ms(value, ttl)
        await self._write(
            _PUT,
            [self._value_prefix(session_id) + key, self._index(session_id), self._sessions],
            [bytes(value), ttl_ms, key, session_id],
            f"put of {key!r}",
        )

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        ttl_ms = self._ttl_ms(value, ttl)
        stored = await self._write(
            _CAS,
            [self._value_prefix(session_id) + key, self._index(session_id), self._sessions],
            [bytes(value), ttl_ms, key, session_id, "0" if expected is None else "1", bytes(expected or b"")],
            f"compare_and_set of {key!r}",
        )
        return stored == 1

    async def delete(self, session_id: str, key: str) -> bool:
        keys = [self._value_prefix(session_id) + key, self._index(session_id)]
        removed = await self._write(_DELETE, keys, [key], f"delete of {key!r}")
        return removed == 1

    async def keys(self, session_id: str) -> list[str]:
        live = cast(
            list[bytes],
            await self._conn.script(_KEYS, [self._index(session_id)], [self._value_prefix(session_id)]),
        )
        # Python's sort of str is code point order (Redis orders the UTF-8 bytes the same way).
        return sorted(k.decode() for k in live)

    async def drop_session(self, session_id: str) -> None:
        await self._write(
            _DROP,
            [self._index(session_id), self._sessions],
            [self._value_prefix(session_id), session_id],
            "drop_session",
        )

    async def expire(self) -> int:
        total = 0
        while True:
            reply = cast(
                list[int],
                await self._conn.script(_EXPIRE, [self._sessions], [f"{self._p}:si:", str(_EXPIRE_BATCH)]),
            )
            removed, visited = reply
            total += removed
            # Every visited session leaves the due range, so each round makes progress.
            if visited < _EXPIRE_BATCH:
                return total

    async def aclose(self) -> None:
        await self._conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
