"""NodeLiveness: this node's liveness lease, and the settling of tasks whose node died.

Each node holds the lease ``node:<node id>`` (``_cluster_lease``), renewed every third of its ttl,
and is listed in ``{prefix}:nodes``. Every renewal round it looks at the other listed nodes: one
whose lease expired is dead (a SIGKILL, a lost machine, a partition longer than the ttl), so the
tasks it was running will never finish. One surviving node (the one that takes the short
``sweep:<node>`` lease: exactly one wins a race) asks its TaskRuntime to mark them ``failed`` with a
message naming the node, and takes the dead node off the list. The task records live in the shared
task backend, so the failure and every finished result are readable from every node.

A node that was only stalled past its ttl (a loaded machine) is settled all the same. It lists
itself again with every renewal, and a survivor takes a node off the list only while its lease is
still free, so the tasks it starts after the stall are settled when it really dies.

Two processes given the same node id would fail each other's tasks: the second one to start finds
the lease held by the first and refuses to start (its ``cluster_liveness`` child fails to start).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from mcpvisor.backends._redis_connection import RedisConnection

from ._cluster_lease import Leases, lease_ms

logger = logging.getLogger("mcpvisor.runtime.tree")

#: A node unheard of for this long is dead (seconds). Renewed every third of it.
DEFAULT_NODE_TTL: Final = 10.0
#: How long one node has to settle a dead node's tasks before another may try (a settler that died
#: mid-way); released as soon as the settling ends.
_SWEEP_TTL: Final = 60.0

_ADD: Final = "redis.call('SADD', KEYS[1], ARGV[1]) return 1"
_MEMBERS: Final = "return redis.call('SMEMBERS', KEYS[1])"
# KEYS: node list, the node's lease, its sweep lease. ARGV: node id, holder, ttl ms. 1: the caller
# settles the node now: it is listed, its lease is free, and nobody else is settling it. Checked with
# the claim, so a survivor that looked before another finished does not settle the node twice.
_CLAIM_SWEEP: Final = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local cur = redis.call('GET', KEYS[3])
if cur ~= false and cur ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS: node list, the node's lease. ARGV: node id. Off the list only while its lease is still free:
# a node that came back between the survivor's look and this call keeps its place.
_REMOVE_IF_DEAD: Final = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class NodeIdInUse(RuntimeError):
    """Another live process holds this node id's lease."""


class NodeLiveness:
    """A supervised child (the tree's last ones): keeps the lease, settles dead nodes' tasks."""

    def __init__(
        self,
        url: str,
        prefix: str,
        node_id: str,
        fail_tasks_of: Callable[[str], Awaitable[int]],
        *,
        ttl: float = DEFAULT_NODE_TTL,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"node_ttl must be positive, got {ttl!r}")
        self.url = url
        self.prefix = prefix
        self.node_id = node_id
        self.ttl = ttl
        self._fail_tasks_of = fail_tasks_of
        #: This process's token in the lease: the same id in another process is another holder.
        self._holder = f"{node_id}/{uuid.uuid4().hex}"
        self._nodes = f"{prefix}:nodes"
        #: Dead nodes this node settled (for tests and logs).
        self.settled: list[str] = []

    def __repr__(self) -> str:
        return f"NodeLiveness(node={self.node_id!r}, ttl={self.ttl:g})"

    async def __call__(
        self, *, task_status: trio.TaskStatus[NodeLiveness] = trio.TASK_STATUS_IGNORED
    ) -> None:
        conn = RedisConnection(self.url, owner=f"liveness of node {self.node_id}")
        leases = Leases(conn, self.prefix)
        name = f"node:{self.node_id}"
        try:
            if not await leases.acquire(name, self._holder, self.ttl):
                other = await leases.holder(name)
                raise NodeIdInUse(
                    f"node id {self.node_id!r} is in use by another live process ({other}); give each "
                    "process on one Redis its own --node-id"
                )
            await conn.script(_ADD, [self._nodes], [self.node_id])
            try:  # at once: a restarted node settles what its previous life (another id) left
                await self._sweep(conn, leases)
            except Exception as exc:
                logger.warning("node %s: settling stopped nodes failed: %r", self.node_id, exc)
            task_status.started(self)
            while True:
                await trio.sleep(self.ttl / 3)
                await self._round(conn, leases, name)
        finally:
            with trio.CancelScope(shield=True):
                try:
                    with trio.move_on_after(1.0):
                        # An orderly stop: the lease goes now, the node stays listed, so a survivor
                        # settles at once the tasks whose bodies this stop cancelled.
                        await leases.release(name, self._holder)
                except Exception as exc:
                    logger.info("node %s: could not release its lease: %r", self.node_id, exc)
                await conn.aclose()

    async def _round(self, conn: RedisConnection, leases: Leases, name: str) -> None:
        """Renew the lease (``NodeIdInUse`` if another process took it), then settle dead nodes."""
        try:
            renewed = await leases.renew(name, self._holder, self.ttl)
            if not renewed:
                logger.warning("node %s: its liveness lease expired; taking it again", self.node_id)
                renewed = await leases.acquire(name, self._holder, self.ttl)
            if renewed:
                # Listed with every renewal: a survivor may have settled this node during a stall
                # past its ttl and taken it off the list; unlisted, its later death goes unsettled.
                await conn.script(_ADD, [self._nodes], [self.node_id])
                await self._sweep(conn, leases)
        except Exception as exc:  # Redis slow or away: try again next round
            logger.warning("node %s: liveness round failed: %r", self.node_id, exc)
            return
        if not renewed:
            raise NodeIdInUse(f"node id {self.node_id!r} was taken by another process")

    async def _sweep(self, conn: RedisConnection, leases: Leases) -> None:
        members = await conn.script(_MEMBERS, [self._nodes], [])
        assert isinstance(members, list | set)
        for raw in members:
            node = raw.decode() if isinstance(raw, bytes) else str(raw)
            if node == self.node_id:
                continue
            lease, sweep = leases.key(f"node:{node}"), f"sweep:{node}"
            keys = [self._nodes, lease, leases.key(sweep)]
            if await conn.script(_CLAIM_SWEEP, keys, [node, self._holder, lease_ms(_SWEEP_TTL)]) != 1:
                continue  # alive, settled already, or another survivor is settling it
            try:
                failed = await self._fail_tasks_of(node)
                await conn.script(_REMOVE_IF_DEAD, [self._nodes, lease], [node])
            finally:  # off the list first, then free: a later death of this id is settled at once
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await leases.release(sweep, self._holder)
            self.settled.append(node)
            logger.warning(
                "node %s: node %s stopped renewing its lease; %d of its tasks marked failed",
                self.node_id,
                node,
                failed,
            )
