"""How a running server joins the cluster: its ClusterBus and NodeLiveness, and their hooks.

Kept apart from ``_runtime`` so the server module only calls a few functions: ``open_cluster_bus``
decides whether this server is one node of many (a Redis session store or task backend, shared),
``cluster_hooks`` gives the EventBus the server operations it needs for events from other nodes, and
``cluster_children`` are the tree's last children (their restarts, on a lost Redis connection,
restart nothing else).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from mcpvisor.supervisors import ChildSpec

from ._cluster_bus import ClusterBus, cluster_target
from ._cluster_liveness import NodeLiveness
from ._cluster_owner import Ownership
from ._cluster_stream_log import SharedStreamLog
from ._event_bus import ClusterHooks
from ._state_store_server import StoreFailed
from ._task_runtime import TASK_RUNTIME_NAME, FailNodeTasks

logger = logging.getLogger("mcpvisor.runtime.tree")


def open_cluster_bus(running: Any, store: object, tasks: object) -> ClusterBus | None:
    """The server's ClusterBus when one of its backends is Redis (else None: one node, local bus).

    The channel is the first Redis backend's key prefix: nodes that share a store share a bus."""
    target = cluster_target(store, tasks)
    if target is None:
        return None
    url, prefix = target
    bus = ClusterBus(url, prefix, running.node_id)
    running.cluster = bus
    logger.info("node %s: events cross nodes on Redis channel %s", running.node_id, bus.channel)
    return bus


def cluster_hooks(running: Any) -> ClusterHooks | None:
    bus = running.cluster
    if bus is None:
        return None
    return ClusterHooks(
        bus=bus, has_session=running._has_session, to_session=running._to_session, end_here=running._end_here
    )


def cluster_children(
    running: Any, bus: ClusterBus, store: object, tasks: object, node_ttl: float
) -> list[ChildSpec]:
    children = [ChildSpec("cluster_bus", functools.partial(bus, running._hear), shutdown=1.0)]
    sessions = cluster_target(store)
    if sessions is not None and running._deps.shared:  # sessions in Redis: one live owner each
        ownership = Ownership(bus, sessions[0], sessions[1], ttl=node_ttl)
        ownership.redo = running._redo
        ownership.on_lost = functools.partial(running._end_here, reason="this node lost its lease")
        bus.background.append(ownership.renew_forever)
        running.ownership = ownership
    log_target = cluster_target(store, tasks)
    assert log_target is not None
    # The SSE event log in Redis: a stream can be resumed on any node (``Last-Event-ID``).
    log = SharedStreamLog(log_target[0], log_target[1], running.node_id)
    bus.background.append(log.run)
    running.stream_log = log
    task_target = cluster_target(tasks)
    # Liveness runs on every node of a cluster: a resumed stream's node, a forwarded request's
    # owner are judged dead by it; with task markers in Redis it also settles a dead node's tasks.
    url, prefix = task_target if task_target is not None else log_target

    async def fail_tasks_of(node: str) -> int:
        if task_target is None:
            return 0  # tasks are this process's own (memory): nothing of theirs is shared
        runtime = running.registry.whereis(TASK_RUNTIME_NAME)
        if runtime is None:
            raise RuntimeError("the task runtime is restarting")
        result = await runtime.call(FailNodeTasks(node))
        if isinstance(result, StoreFailed):
            raise result.error
        return int(result)

    liveness = NodeLiveness(url, prefix, running.node_id, fail_tasks_of, ttl=node_ttl)
    running.liveness = liveness
    children.append(ChildSpec("cluster_liveness", liveness, shutdown=2.0))
    return children
