"""Leases in Redis: a named key held by one holder until it expires or is released.

One atomic script per operation (``SET NX PX``, and compare-then-act in Lua), on the Redis server's
clock, so two nodes racing for one lease get exactly one winner, and a holder that stops renewing
(its process died) loses it after ``ttl`` without anyone's help. Nodes use one for their liveness
(``_cluster_liveness``): a node whose lease expired is dead, and what it was running is settled by
another node.
"""

from __future__ import annotations

from typing import Final

from mcpvisor.backends._redis_connection import RedisConnection

# KEYS: lease. ARGV: holder, ttl ms. 1: held by the caller now (taken, or already its own: renewed).
_ACQUIRE: Final = """
local cur = redis.call('GET', KEYS[1])
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder, ttl ms. "": held by the caller now (taken or renewed); else the holder.
_ACQUIRE_OR_HOLDER: Final = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return cur
"""

# KEYS: lease. ARGV: holder, ttl ms. 1: renewed; 0: the caller does not hold it (expired or taken).
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder. 1: released; 0: it was not the caller's.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def lease_ms(ttl: float) -> str:
    if not ttl > 0:
        raise ValueError(f"a lease's ttl must be positive, got {ttl!r}")
    return str(max(1, int(ttl * 1000)))


class Leases:
    """Leases under ``{prefix}:lease:<name>`` on one Redis connection (which the caller closes)."""

    def __init__(self, conn: RedisConnection, prefix: str) -> None:
        self._conn = conn
        self._prefix = f"{prefix}:lease:"

    def key(self, name: str) -> str:
        return self._prefix + name

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease if it is free (or renew it if ``holder`` has it); False if another holds it."""
        return await self._conn.script(_ACQUIRE, [self.key(name)], [holder, lease_ms(ttl)]) == 1

    async def acquire_or_holder(self, name: str, holder: str, ttl: float) -> str | None:
        """Take the lease if it is free (or renew it if ``holder`` has it): None; else who holds it.
        One round trip, and no gap between the attempt and the answer."""
        out = await self._conn.script(_ACQUIRE_OR_HOLDER, [self.key(name)], [holder, lease_ms(ttl)])
        text = out.decode() if isinstance(out, bytes) else str(out)
        return text or None

    async def renew(self, name: str, holder: str, ttl: float) -> bool:
        return await self._conn.script(_RENEW, [self.key(name)], [holder, lease_ms(ttl)]) == 1

    async def release(self, name: str, holder: str) -> bool:
        return await self._conn.script(_RELEASE, [self.key(name)], [holder]) == 1

    async def holder(self, name: str) -> str | None:
        data = await self._conn.get(self.key(name))
        return None if data is None else data.decode()
