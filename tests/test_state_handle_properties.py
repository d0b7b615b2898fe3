"""Property: whatever mix of minting, using, crashing, closing, foreign owners and passing time (past
idle lifetimes and expiries) hits a few state handles, every answer is the one a pure model of handles
predicts, a crash restarts the handle's actor under the same handle with its count, and an ended handle
leaves nothing in the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import Context, CrashSession, Server, StateHandle, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client

TTL = 100.0
IDLE = 30.0
CLIENTS = ("alice", "bob")

app = Server("handle-properties")


@app.tool
async def mint(ctx: Context) -> str:
    return await ctx.open_handle(ttl=TTL)


@app.tool
async def use(ctx: Context, handle: StateHandle) -> int:
    n: int = await ctx.get_state("n", 0) + 1
    await ctx.set_state("n", n)
    return n


@app.tool
async def crash(ctx: Context, handle: StateHandle) -> None:
    raise CrashSession("property test")


@app.tool
async def close(ctx: Context, handle: StateHandle) -> str:
    await ctx.close_handle()
    return "closed"


# ---- the model ----------------------------------------------------------------------------------------


@attrs.define
class ModelHandle:
    owner: str
    expires: float
    count: int = 0
    closed: bool = False
    crashes: int = 0

    def alive(self, now: float) -> bool:
        return not self.closed and now < self.expires


def expected(handle: ModelHandle, client: str, now: float) -> tuple[str, ...]:
    """The refusals the server may answer with (a phrase of each), or () for "goes ahead".

    A handle that ended is refused as ended even to another client (once its record is gone the
    server cannot tell whose it was, and saying "someone else's" would tell a stranger it existed).
    """
    if not handle.alive(now):
        ended = "unknown, closed or expired" if handle.closed else "expired"
        return (ended, "belongs to another client") if client != handle.owner else (ended,)
    if client != handle.owner:
        return ("belongs to another client",)
    return ()


# ---- the run ------------------------------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("mint"), st.sampled_from(CLIENTS), st.just(0)),
        st.tuples(st.sampled_from(["use", "crash", "close"]), st.sampled_from(CLIENTS), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.just(""), st.sampled_from([1, 10, 31, 60])),
    ),
    max_size=30,
)


def refusal_of(result: Mapping[str, Any]) -> str | None:
    return str(result["content"][0]["text"]) if result.get("isError") else None


@settings(max_examples=60, deadline=None)
@given(steps)
def test_handles_follow_the_model(ops: list[tuple[str, str, int]]) -> None:
    async def main() -> None:
        async with (
            start_server(app, session_restart_intensity=1000, handle_idle_timeout=IDLE) as running,
            open_memory_client(
                running, protocol_version="2026-07-28", client_info={"name": "alice", "version": "1"}
            ) as alice,
            open_memory_client(
                running, protocol_version="2026-07-28", client_info={"name": "bob", "version": "1"}
            ) as bob,
        ):
            clients: dict[str, MemoryClient] = {"alice": alice, "bob": bob}
            handles: list[tuple[str, ModelHandle]] = []
            for op, who, arg in ops:
                now = trio.current_time()
                if op == "wait":
                    await trio.sleep(arg)
                    await trio.testing.wait_all_tasks_blocked()
                    continue
                if op == "mint":
                    result = await clients[who].call_tool("mint")
                    handles.append((result["content"][0]["text"], ModelHandle(who, now + TTL)))
                    continue
                if not handles:
                    continue
                handle, model = handles[arg % len(handles)]
                refusals = expected(model, who, now)
                client = clients[who]
                if op == "crash" and not refusals:
                    with pytest.raises(JsonRpcError, match="crashed"):
                        await client.call_tool("crash", {"handle": handle})
                    model.crashes += 1
                    await trio.testing.wait_all_tasks_blocked()
                    assert running.handle_incarnations(handle) >= 2  # restarted, same handle
                    continue
                if op == "crash":
                    result = await client.call_tool("crash", {"handle": handle})
                else:
                    result = await client.call_tool(op, {"handle": handle})
                got = refusal_of(result)
                if refusals:
                    assert got is not None and any(r in got for r in refusals), (op, who, got, model, now)
                    continue
                assert got is None, (op, who, got, model, now)
                if op == "use":
                    model.count += 1
                    assert result["structuredContent"] == {"result": model.count}
                else:  # close
                    model.closed = True
            await trio.testing.wait_all_tasks_blocked()
            now = trio.current_time()
            live = {h for h, m in handles if m.alive(now)}
            assert set(running.handle_ids()) <= live  # idle ones may have stopped their actors
            for handle, model in handles:
                if model.alive(now):
                    continue
                # An ended handle is refused to its owner, and then nothing of it is left (one that
                # ended while its actor was stopped waits for the store's TTL, or this discovery).
                refused = refusal_of(await clients[model.owner].call_tool("use", {"handle": handle}))
                assert refused is not None and "expired" in refused
                assert await running.store.keys(handle) == []

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
