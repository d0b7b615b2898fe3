"""``update_state`` across nodes: two servers sharing one SQLite file or one Redis.

One StateStoreServer serialises only its own server's operations; two nodes updating the same key
each read, then write, and one of two concurrent updates could be lost. Stores that offer
``compare_and_set`` (memory, SQLite, Redis) make the write conditional on the value read, and the
StateStoreServer reads again and re-applies the function when another node got there first, so the
count is exact across nodes too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from _runtime_app import app
from mcpvisor.backends import RedisSessionStore, SessionStateStore, SQLiteSessionStore, decode
from mcpvisor.runtime.server import RunningServer, start_server

PER_NODE = 150
SESSION = "0" * 32


@asynccontextmanager
async def _two_nodes(
    make: Callable[[], SessionStateStore],
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    first, second = make(), make()
    try:
        async with (
            start_server(app, session_state_store=first) as a,
            start_server(app, session_state_store=second) as b,
        ):
            yield a, b
    finally:
        await first.aclose()
        await second.aclose()


async def _increment_from_both(a: RunningServer, b: RunningServer) -> int:
    calls: list[int] = []

    async def bump(node: RunningServer) -> None:
        calls.append(await node.store.update(SESSION, "n", lambda n: n + 1, 0))

    async with trio.open_nursery() as nursery:
        for _ in range(PER_NODE):
            nursery.start_soon(bump, a)
            nursery.start_soon(bump, b)
    assert sorted(calls) == list(range(1, 2 * PER_NODE + 1))  # each new value returned exactly once
    data = await a.store.get(SESSION, "n")
    assert data is not None
    value: int = decode(data)
    return value


async def test_update_state_is_exact_across_two_nodes_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with trio.fail_after(120):
        async with _two_nodes(lambda: SQLiteSessionStore(path)) as (a, b):
            assert await _increment_from_both(a, b) == 2 * PER_NODE


async def test_update_state_is_exact_across_two_nodes_on_redis(redis_server: str, redis_prefix: str) -> None:
    with trio.fail_after(120):
        async with _two_nodes(lambda: RedisSessionStore(redis_server, prefix=redis_prefix)) as (a, b):
            assert await _increment_from_both(a, b) == 2 * PER_NODE


class _NoCas:
    """A store without ``compare_and_set`` (a custom backend): updates still work, serialised per node."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "compare_and_set":
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_store_without_compare_and_set_still_updates_atomically_per_node() -> None:
    from mcpvisor.backends import MemorySessionStore

    store = _NoCas(MemorySessionStore())
    assert not hasattr(store, "compare_and_set")
    async with start_server(app, session_state_store=store) as node:  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            for _ in range(PER_NODE):
                nursery.start_soon(node.store.update, SESSION, "n", lambda n: n + 1, 0)
        data = await node.store.get(SESSION, "n")
    assert data is not None and decode(data) == PER_NODE
