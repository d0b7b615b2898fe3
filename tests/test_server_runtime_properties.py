"""Property: whatever mix of calls, handler failures, crashes and cancellations hits a few sessions,
every request gets exactly one final answer (none when cancelled), stored values follow a pure model,
and a crash restarts only its own session."""

from __future__ import annotations

import math

import trio
import trio.testing
from _runtime_app import app
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import ErrorResponse, Message, Request, Response
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import open_memory_client

SESSIONS = 3
operations = st.lists(
    st.tuples(st.sampled_from(["counter", "fail", "crash", "cancel"]), st.integers(0, SESSIONS - 1)),
    max_size=25,
)


@settings(max_examples=25, deadline=None)
@given(operations)
def test_sessions_follow_the_model(ops: list[tuple[str, int]]) -> None:
    async def main() -> None:
        async with (
            start_server(app, session_restart_intensity=1000) as running,
            open_memory_client(running) as c0,
            open_memory_client(running) as c1,
            open_memory_client(running) as c2,
        ):
            clients = [c0, c1, c2]
            counts = [0] * SESSIONS
            crashes = [0] * SESSIONS
            for number, (op, index) in enumerate(ops):
                client = clients[index]
                sid = client.session_id
                assert sid is not None
                send, receive = trio.open_memory_channel[Message](math.inf)
                name = "wait" if op == "cancel" else op
                await running.submit(sid, Request(number, "tools/call", {"name": name}), send)
                if op == "cancel":
                    await trio.testing.wait_all_tasks_blocked()
                    await client.cancel(number)
                finals = [m async for m in receive if isinstance(m, Response | ErrorResponse)]
                if op == "cancel":
                    assert finals == []
                    continue
                assert len(finals) == 1 and finals[0].id == number
                final = finals[0]
                if op == "counter":
                    counts[index] += 1
                    assert isinstance(final, Response)
                    assert final.result["content"][0]["text"] == str(counts[index])
                else:
                    assert isinstance(final, ErrorResponse) and final.error.code == -32603
                    if op == "crash":
                        crashes[index] += 1
            await trio.testing.wait_all_tasks_blocked()  # let the last restart finish
            for index, client in enumerate(clients):
                assert client.session_id is not None
                assert running.session_incarnations(client.session_id) == 1 + crashes[index]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
