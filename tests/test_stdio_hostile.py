"""stdio: no message kills the process, and what a tool returns never kills the transport (issue 7).

A real ``mcpvisor`` subprocess for the reported reproductions, and the same inputs in process against
tools that return lone surrogates, NaN and structures too deep to encode.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
import trio.testing
from _fake_port import fake_port
from _hostile_app import HOSTILE_LINES, app
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.stdio import serve_stdio

ROOT = Path(__file__).resolve().parent.parent

INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "c", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _call(request_id: int, tool: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {"progressToken": request_id}},
    }


def _answers(stdout: str) -> list[Any]:
    lines = stdout.splitlines()
    for line in lines:
        line.encode("utf-8")  # strict: a lone surrogate on the wire would raise here
    return [json.loads(line, parse_constant=lambda c: f"<{c} on the wire>") for line in lines]


def test_the_demo_over_stdio_survives_the_reported_inputs() -> None:
    lines = [
        json.dumps(INIT),
        json.dumps(INITIALIZED),
        json.dumps(_call(2, "counter")),
        *HOSTILE_LINES,
        json.dumps(_call(3, "counter")),
        '{"jsonrpc":"2.0","id":4,"method":"ping"}',
    ]
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "demo", "--transport", "stdio"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = _answers(done.stdout)
    by_id: dict[Any, list[Any]] = {}
    for answer in answers:
        assert answer["jsonrpc"] == "2.0"
        by_id.setdefault(answer.get("id"), []).append(answer)
    assert by_id[3][0]["result"]["content"][0]["text"].startswith("count = 2 ")  # the session lived on
    assert by_id[4][0]["result"] == {}
    for request_id in (5, 6, 8, 9, 10):  # the message was read: its id is answered
        assert by_id[request_id][0]["error"]["code"] == -32700, by_id[request_id]
    # the unreadable id, the two floods of nesting (not read at all) and the unreadable notification
    assert [a["error"]["code"] for a in by_id[None]] == [-32700] * 4
    assert 7 not in by_id
    assert "Traceback" not in done.stderr


async def _exchange(setup: list[str], lines: list[str], wanted: set[Any]) -> dict[Any, list[Any]]:
    """Feed raw ``setup`` lines to serve_stdio in process, wait for the answers to its requests, then
    ``lines``; collect answers until every id in ``wanted`` is answered."""
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    by_id: dict[Any, list[Any]] = {}
    buffer = b""

    async def until_answered(ids: set[Any]) -> None:
        nonlocal buffer
        while not ids <= {k for k, v in by_id.items() if any("result" in a or "error" in a for a in v)}:
            chunk = await stdout_receive.receive_some()
            assert chunk, "stdout closed: the transport died"
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                answer = json.loads(line.decode("utf-8"), parse_constant=lambda c: f"<{c} on the wire>")
                by_id.setdefault(answer.get("id"), []).append(answer)

    def raw(batch: list[str]) -> bytes:
        return "".join(line + "\n" for line in batch).encode("utf-8", "surrogatepass")

    with trio.fail_after(20):
        async with start_server(app) as running, trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )
            await stdin_send.send_all(raw(setup))
            await until_answered({json.loads(line)["id"] for line in setup if '"id"' in line})
            await stdin_send.send_all(raw(lines))
            await until_answered(wanted)
            await stdin_send.aclose()
    return by_id


async def test_tools_returning_what_json_cannot_carry_answer_their_request_over_stdio() -> None:
    calls = [
        "surrogate_text",
        "surrogate_structured",
        "nan_structured",
        "surrogate_log",
        "nan_progress",
        "nan_elicit",
        "deep_result",
        "counter",
    ]
    set_level = {"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": "info"}}
    setup = [json.dumps(INIT), json.dumps(INITIALIZED), json.dumps(set_level)]
    lines = [json.dumps(_call(10 + i, tool)) for i, tool in enumerate(calls)]
    by_id = await _exchange(setup, lines, {10 + i for i in range(len(calls))})
    final = {k: v[-1] for k, v in by_id.items()}
    assert final[10]["result"]["content"][0]["text"] == "before \ufffd after"
    assert final[11]["result"]["structuredContent"] == {"text": "\ufffd", "\ufffd": "key"}
    assert final[12]["error"]["code"] == -32603 and "JSON" in final[12]["error"]["message"]
    assert final[13]["result"]["content"][0]["text"] == "logged"
    notes = [a for a in by_id[None] if a.get("method")]
    assert {"log \ufffd", "progress \ufffd"} <= {
        n["params"].get("data", n["params"].get("message")) for n in notes
    }
    assert final[14]["error"]["code"] == -32603  # NaN progress: the handler is told, the request fails
    assert final[15]["error"]["code"] == -32603  # an elicitation JSON cannot carry is never sent
    assert final[16]["error"]["code"] == -32603
    assert final[17]["result"]["structuredContent"] == {"result": 1}
    assert all("on the wire>" not in json.dumps(a) for answers in by_id.values() for a in answers)


async def test_a_full_server_answers_initialize_over_stdio_instead_of_dying() -> None:
    """``create_session`` raising ``SessionBusy`` (``max_sessions`` reached) once escaped the stdio loop."""
    with trio.fail_after(20):
        async with start_server(app, max_sessions=1) as running, trio.open_nursery() as nursery:
            pipes = []
            for _ in range(2):
                stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
                stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
                nursery.start_soon(
                    functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
                )
                pipes.append((stdin_send, stdout_receive))

            async def ask(index: int, line: str) -> Any:
                stdin_send, stdout_receive = pipes[index]
                await stdin_send.send_all(line.encode() + b"\n")
                return json.loads(await stdout_receive.receive_some())

            assert "result" in await ask(0, json.dumps(INIT))  # the only session the server may hold
            refused = await ask(1, json.dumps(INIT))
            # -32603 here; -32050 (SERVER_BUSY) where the session cap has its own code (main)
            assert refused["id"] == 1 and refused["error"]["code"] in (-32603, -32050)
            assert "retry" in refused["error"]["message"]
            assert (await ask(1, '{"jsonrpc":"2.0","id":2,"method":"ping"}'))["id"] == 2  # still serving
            for stdin_send, _ in pipes:
                await stdin_send.aclose()


async def test_a_port_that_raises_costs_the_request_not_the_stdio_loop() -> None:
    """A bug behind the port (``submit`` raising) is -32603 for that request; the loop keeps serving."""
    with trio.fail_after(20):
        async with fake_port() as port, trio.open_nursery() as nursery:
            stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
            stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
            nursery.start_soon(functools.partial(serve_stdio, port, stdin=stdin_receive, stdout=stdout_send))

            async def ask(line: str) -> Any:
                await stdin_send.send_all(line.encode() + b"\n")
                return json.loads(await stdout_receive.receive_some())

            assert "result" in await ask(json.dumps(INIT))
            port.broken = True
            await stdin_send.send_all(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')  # dropped
            failed = await ask('{"jsonrpc":"2.0","id":2,"method":"echo"}')
            assert failed["id"] == 2 and failed["error"] == {"code": -32603, "message": "Internal error"}
            port.broken = False
            assert (await ask('{"jsonrpc":"2.0","id":3,"method":"echo","params":{"x":1}}'))["id"] == 3
            await stdin_send.aclose()
