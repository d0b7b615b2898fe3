"""The janitor: every ``interval`` seconds, ask both backends to drop what is past its TTL.

Backends never return an expired value, but they keep its bytes until ``expire()`` runs (the memory
backend by design: no sweep per operation). Without a periodic sweep, values of abandoned sessions
would pin memory until their TTL *and* a read of that very key. It goes through the owning actors like
every other backend operation.
"""

from __future__ import annotations

import logging

import trio
from mcpvisor.supervisors import stop_requested

from ..actors import Registry
from ._state_store_server import StateStoreClient
from ._task_runtime import TASK_RUNTIME_NAME, ExpireTasks

logger = logging.getLogger("mcpvisor.runtime.tree")


class Janitor:
    """A supervisor child (start function)."""

    def __init__(self, store: StateStoreClient, registry: Registry, interval: float) -> None:
        self.store = store
        self.registry = registry
        self.interval = interval
        self.sweeps = 0

    def __repr__(self) -> str:  # the supervision log shows it as a child's handle
        return f"<Janitor sweeping every {self.interval:g}s, {self.sweeps} sweeps>"

    async def __call__(self, *, task_status: trio.TaskStatus[Janitor] = trio.TASK_STATUS_IGNORED) -> None:
        stop = stop_requested()
        task_status.started(self)
        while True:
            with trio.move_on_after(self.interval):
                await stop.wait()
            if stop.is_set():
                return
            await self.sweep()

    async def sweep(self) -> None:
        try:
            values = await self.store.expire()
            tasks = self.registry.whereis(TASK_RUNTIME_NAME)
            records = await tasks.call(ExpireTasks()) if tasks is not None else 0
        except Exception as exc:  # a failing backend must not take the tree down with it
            logger.warning("expiry sweep failed: %r", exc)
            return
        self.sweeps += 1
        if values or records:
            logger.debug("expiry sweep removed %s values and %s task records", values, records)
