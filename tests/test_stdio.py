"""The stdio transport, driven by the official ``mcp`` SDK client against a real subprocess."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _runtime_app import app
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.stdio import serve_stdio

ROOT = Path(__file__).resolve().parent.parent


def _demo_params() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpvisor", "run", "mcpvisor.runtime.server.demo:server", "--transport", "stdio"],
        cwd=str(ROOT),
    )


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_sdk_client_over_stdio_state_progress_and_crash_restart(tmp_path: Path) -> None:
    errlog = (tmp_path / "stderr.log").open("w+")
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with (
        stdio_client(_demo_params(), errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        assert init.server_info.name == "mcpvisor-demo"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"counter", "slow", "crash"} <= names
        assert _text(await session.call_tool("counter", {})).startswith("count = 1 ")
        assert _text(await session.call_tool("counter", {})).startswith("count = 2 ")
        slow = await session.call_tool("slow", {"steps": 3, "delay": 0.01}, progress_callback=on_progress)
        assert _text(slow) == "finished 3 steps"
        assert progress == [(1, 3), (2, 3), (3, 3)]
        with pytest.raises(Exception, match="session crashed"):
            await session.call_tool("crash", {})
        # same session, restarted: the stored count carries on
        assert _text(await session.call_tool("counter", {})).startswith("count = 3 ")
    errlog.seek(0)
    log = errlog.read()
    assert "ChildRestarted(supervisor='session " in log
    assert "resumed" in log


async def test_serve_stdio_in_process_both_eras_and_bad_lines() -> None:

    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    lines = [
        {"jsonrpc": "2.0", "id": "s1", "method": "tools/list", "params": {"_meta": meta}},
        "{not json",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},  # handshake era, before initialize
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "initialize",
            "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "c", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "counter", "arguments": {}}},
    ]
    payload = b"".join((x if isinstance(x, str) else json.dumps(x)).encode() + b"\n" for x in lines)
    answers: dict[object, dict[str, object]] = {}

    async def read_all() -> None:
        buffer = b""
        while len(answers) < 5:
            chunk = await stdout_receive.receive_some()
            assert chunk, "stdout closed early"
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                message = json.loads(line)
                answers[message.get("id")] = message

    with trio.fail_after(10):
        async with start_server(app) as running:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
                )
                await stdin_send.send_all(payload)
                await read_all()
                await stdin_send.aclose()  # EOF: the session closes, serve_stdio returns
            assert running.session_ids() == []
    assert answers["s1"]["result"]["resultType"] == "complete"  # type: ignore[index]
    assert answers[None]["error"]["code"] == -32700  # type: ignore[index]
    assert answers[1]["error"]["code"] == -32600  # type: ignore[index]
    assert answers[2]["result"]["protocolVersion"] == "2024-11-05"  # type: ignore[index]
    assert answers[3]["result"]["content"][0]["text"] == "1"  # type: ignore[index]


async def _stdio_exchange(lines: list[Any], answers_expected: int, *, eof_first: bool = False) -> list[Any]:
    """Feed ``lines`` to serve_stdio in process; return the first ``answers_expected`` output lines."""
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    payload = b"".join((x if isinstance(x, str) else json.dumps(x)).encode() + b"\n" for x in lines)
    out: list[Any] = []
    with trio.fail_after(10):
        async with start_server(app) as running, trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )
            await stdin_send.send_all(payload)
            if eof_first:
                await stdin_send.aclose()
            buffer = b""
            while len(out) < answers_expected:
                chunk = await stdout_receive.receive_some()
                assert chunk
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                out.extend(json.loads(line) for line in complete)
            await stdin_send.aclose()
    return out


async def test_stdio_batches_for_2025_03_26_answer_as_one_array() -> None:
    init = {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    out = await _stdio_exchange(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            [
                {"jsonrpc": "2.0", "id": 2, "method": "ping"},
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "counter", "arguments": {}},
                },
                {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
                {"jsonrpc": "2.0", "id": None, "method": "bad"},
            ],
        ],
        2,
    )
    assert out[0]["result"]["protocolVersion"] == "2025-03-26"
    batch = out[1]
    assert isinstance(batch, list) and len(batch) == 3
    by_id = {item.get("id"): item for item in batch}
    assert by_id[2]["result"] == {} and by_id[3]["result"]["content"][0]["text"] == "1"
    assert by_id[None]["error"]["code"] == -32600


@pytest.mark.parametrize(("seconds", "answer"), [(3, "done"), (100, "session closed")])
async def test_stdio_eof_lets_running_requests_finish_within_a_grace(
    seconds: float, answer: str, autojump_clock: trio.testing.MockClock
) -> None:
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    call = {"name": "wait", "arguments": {"seconds": seconds}}
    out = await _stdio_exchange(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
        ],
        2,
        eof_first=True,
    )
    final = out[1]
    assert final["id"] == 2
    assert answer in json.dumps(final)


async def test_close_sse_stream_is_dropped_over_stdio() -> None:
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    call = {"name": "detach", "arguments": {}, "_meta": {"progressToken": "t"}}
    out = await _stdio_exchange(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
        ],
        3,
    )
    assert [m.get("method") for m in out[1:]] == ["notifications/progress", None]
    assert out[2]["result"]["content"][0]["text"] == "still here"


async def test_stdio_eof_after_a_refused_request_ends_promptly() -> None:
    # A request refused by the per-session limit (-32050) was never taken by the runtime, so the
    # connection closes its replies channel itself: its pump ends, and the end of input waits only for
    # the requests still running (0.3 s). (It used to wait forever, for a pump that could not end.)
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "wait", "arguments": {"seconds": 0.3}},
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "wait", "arguments": {"seconds": 0.3}},
        },
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "counter", "arguments": {}}},
    ]
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    limits = {"max_requests_per_session": 1, "max_queued_requests_per_session": 1}
    out: list[Any] = []
    ended: list[float] = []

    async def serve() -> None:
        await serve_stdio(running, stdin=stdin_receive, stdout=stdout_send)
        ended.append(trio.current_time())

    async def read() -> None:
        buffer = b""
        while True:
            buffer += await stdout_receive.receive_some()
            *complete, buffer = buffer.split(b"\n")
            out.extend(json.loads(line) for line in complete)

    with trio.fail_after(10):
        async with start_server(app, **limits) as running, trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            nursery.start_soon(read)
            await stdin_send.send_all(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
            while len(out) < 2:  # noqa: ASYNC110 (a count, no event)
                await trio.sleep(0.01)
            refused = [answer for answer in out if "error" in answer]
            assert refused and all(answer["error"]["code"] == -32050 for answer in refused)
            start = trio.current_time()
            await stdin_send.aclose()
            while not ended:  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    elapsed = ended[0] - start
    assert elapsed < 2.0
