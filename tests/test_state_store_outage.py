"""A Redis outage mid-traffic leaves no phantom write (issue 7, item 5), on a real ``redis-server``.

Before the fence, 12 of 48 increments answered with an error were applied once Redis came back: the
caller's call had timed out, but its write still sat in the StateStoreServer's mailbox (or in the
socket to the paused Redis) and ran later. Here a private redis-server is paused with SIGSTOP while one
session keeps writing, then resumed. Every write is tagged: half are ``update_state`` calls appending
their tag to one list (a read, then a write, in the store actor), half ``set_state`` of a key of their
own (a bare write, which may be in flight to Redis when it stops), so the final state says exactly
which writes were applied, and each is compared with what its caller was told:

- acknowledged: must be in the list;
- "not applied" (the operation never started before its deadline): must not be in the list, ever;
- "outcome unknown" (it had been sent to Redis when its caller gave up): may be either, and is the
  only answer that may be;
- any other error (a failed read before the write was sent): must not be in the list.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from _redis_server import RedisServer, require_redis_server, start_redis_server
from mcpvisor.backends import RedisSessionStore, decode
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import Context, Server, start_server
from mcpvisor.runtime.transports.memory import open_memory_client

pytestmark = pytest.mark.slow

WRITES = 48
PAUSE_AT, RESUME_AT = 0.4, 2.4  # seconds into the traffic


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone: it gets paused, which the shared one must never be."""
    binary = require_redis_server("redis-server is not on PATH")
    server = start_redis_server(binary, tmp_path)
    try:
        yield server
    finally:
        os.kill(server.process.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        server.stop()


def _tagging_server() -> Server:
    server = Server("tags")

    @server.tool
    async def tag(ctx: Context, name: str) -> str:
        await ctx.update_state("tags", lambda tags: [*tags, name], default=[])
        return "ok"

    @server.tool
    async def mark(ctx: Context, name: str) -> str:
        await ctx.set_state(name, True)
        return "ok"

    return server


def _verdict(exc: JsonRpcError) -> str:
    if "not applied and never will be" in exc.message:
        return "not applied"
    if "may or may not" in exc.message:
        return "unknown"
    return "error"


async def test_a_redis_outage_leaves_no_phantom_write(own_redis: RedisServer) -> None:
    prefix = f"outage{uuid.uuid4().hex[:8]}"
    store = RedisSessionStore(own_redis.url, prefix=prefix, request_timeout=0.3)
    told: dict[str, str] = {}
    with trio.fail_after(60):
        async with (
            start_server(
                _tagging_server(),
                session_state_store=store,
                state_store_timeout=1.0,
                state_store_outcome_wait=0.5,
            ) as running,
            open_memory_client(running, protocol_version="2025-06-18") as client,
        ):
            session_id = client.session_id
            assert session_id is not None

            async def write(tool: str, name: str) -> None:
                try:
                    await client.call_tool(tool, {"name": name})
                    told[name] = "ok"
                except JsonRpcError as exc:
                    told[name] = _verdict(exc)

            async def outage() -> None:
                await trio.sleep(PAUSE_AT)
                os.kill(own_redis.process.pid, signal.SIGSTOP)
                await trio.sleep(RESUME_AT - PAUSE_AT)
                os.kill(own_redis.process.pid, signal.SIGCONT)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(outage)
                for i in range(WRITES):
                    nursery.start_soon(write, "tag" if i % 2 else "mark", f"w{i}")
                    await trio.sleep(0.05)
            await trio.sleep(1.0)  # let Redis run whatever was buffered while it was stopped
            async with RedisSessionStore(own_redis.url, prefix=prefix) as reader:
                data = await reader.get(session_id, "tags")
                marked = {k for k in await reader.keys(session_id) if k.startswith("w")}
    await store.aclose()
    applied = marked | (set() if data is None else set(decode(data)))
    by_answer = {answer: {n for n, a in told.items() if a == answer} for answer in told.values()}
    acknowledged = by_answer.get("ok", set())
    refused = by_answer.get("not applied", set()) | by_answer.get("error", set())
    unknown = by_answer.get("unknown", set())
    print(
        f"\n{WRITES} writes: {len(acknowledged)} acknowledged, {len(by_answer.get('not applied', ()))} not "
        f"applied, {len(by_answer.get('error', ()))} other errors, {len(unknown)} outcome unknown "
        f"({len(unknown & applied)} of them applied); {len(applied)} applied in all"
    )
    assert len(told) == WRITES
    assert acknowledged <= applied, "an acknowledged write was lost"
    assert not refused & applied, f"phantom writes: {sorted(refused & applied)} were answered as failed"
    assert applied <= acknowledged | unknown
    # the outage was real: some writes were refused, and the server recovered afterwards
    assert refused and len(acknowledged) > WRITES // 4
