"""Fuzzing stdio (issue 7, item 3): raw bytes and JSON-RPC shapes, in process and against a real
``mcpvisor demo --transport stdio``. The transport stays up, every request with a readable id gets
exactly one well-formed answer, every line out is strict JSON, and a bystander's state is unchanged.

The budget is fixed (derandomized, no example database), so a run is the same run every time; see
`fuzz_settings` for a longer hunt.
"""

from __future__ import annotations

import functools
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import trio
import trio.testing
from _fuzz_messages import (
    JSON_VALUES,
    VERSIONS,
    Ids,
    Sent,
    check_answers,
    dumps,
    finals,
    fuzz_settings,
    raw_bytes,
    shaped,
    strict_json,
)
from _hostile_app import app
from hypothesis import given
from hypothesis import strategies as st
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.stdio import serve_stdio

ROOT = Path(__file__).resolve().parent.parent

#: The hostile app's tools, the ones a fuzzed ``tools/call`` may name (plus random names).
TOOLS = (
    "peek",
    "surrogate_text",
    "surrogate_structured",
    "nan_structured",
    "surrogate_log",
    "nan_progress",
    "deep_result",
)


def _init(request_id: Any, version: str) -> bytes:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}).encode()


INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def _tool(request_id: Any, name: str) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}},
    }
    return json.dumps(body).encode()


class _Client:
    """One in-process stdio connection: lines in, every message out kept (strictly parsed)."""

    def __init__(self, nursery: trio.Nursery, port: Any) -> None:
        self.stdin, stdin_receive = trio.testing.memory_stream_one_way_pair()
        stdout_send, self.stdout = trio.testing.memory_stream_one_way_pair()
        self.messages: list[Any] = []
        self._buffer = b""
        nursery.start_soon(functools.partial(serve_stdio, port, stdin=stdin_receive, stdout=stdout_send))

    async def send(self, *lines: bytes) -> None:
        await self.stdin.send_all(b"".join(line + b"\n" for line in lines))

    def answer(self, request_id: Any) -> Any:
        return next((m for m in finals(self.messages) if m.get("id") == request_id), None)

    async def until(self, ids: set[Any]) -> None:
        while not ids <= {m.get("id") for m in finals(self.messages)}:
            await self.more()

    async def more(self) -> None:
        """Read what the server wrote next."""
        chunk = await self.stdout.receive_some()
        assert chunk, "stdout ended: the transport died"
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self.messages.extend(strict_json(line) for line in lines)


async def _run_in_process(inputs: list[Sent], version: str) -> None:
    with trio.fail_after(15):
        async with start_server(app) as port, trio.open_nursery() as nursery:
            bystander = _Client(nursery, port)
            await bystander.send(_init(1, "2025-11-25"), INITIALIZED)
            for request_id in (2, 3):  # one at a time: concurrent counter calls race (issue 7 item 4)
                await bystander.send(_tool(request_id, "counter"))
                await bystander.until({request_id})
            fuzz = _Client(nursery, port)
            await fuzz.send(_init("fuzz-init", version), INITIALIZED)
            await fuzz.until({"fuzz-init"})
            await fuzz.send(
                *(item.data.replace(b"\n", b" ") for item in inputs),
                b'{"jsonrpc":"2.0","id":"end","method":"ping"}',
            )
            await fuzz.until({"end"} | {i for item in inputs for i in item.answered})
            check_answers(inputs, fuzz.messages)
            await bystander.send(_tool(4, "peek"))
            await bystander.until({4})
            assert bystander.answer(4)["result"]["structuredContent"] == {"result": 2}  # untouched
            await fuzz.stdin.aclose()
            await bystander.stdin.aclose()


@fuzz_settings(200)
@given(st.data())
def test_fuzz_stdio_in_process(data: st.DataObject) -> None:
    ids = Ids()
    version = data.draw(st.sampled_from(VERSIONS[:4]), label="version")
    batches = version == "2025-03-26"
    item = st.one_of(shaped(ids, TOOLS, batches=batches), raw_bytes(ids))
    inputs = data.draw(st.lists(item, min_size=1, max_size=10), label="inputs")
    trio.run(_run_in_process, inputs, version)


async def _answer_the_server(answer: Any, version: str) -> None:
    with trio.fail_after(15):
        async with start_server(app) as port, trio.open_nursery() as nursery:
            client = _Client(nursery, port)
            params = {
                "protocolVersion": version,
                "capabilities": {"elicitation": {}},
                "clientInfo": {"name": "f", "version": "1"},
            }
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
            await client.send(json.dumps(init).encode(), INITIALIZED, _tool(2, "ask"))
            while not any(m.get("method") == "elicitation/create" for m in client.messages):
                await client.more()
            asked = next(m for m in client.messages if m.get("method") == "elicitation/create")
            await client.send(answer(asked["id"]))
            await client.send(b'{"jsonrpc":"2.0","id":"end","method":"ping"}')
            await client.until({2, "end"})
            final = client.answer(2)
            assert ("result" in final) != ("error" in final), final
            await client.stdin.aclose()


@st.composite
def _client_answer(draw: st.DrawFn) -> Any:
    """The client's answer to the server's request, as a function of that request's id: any shape,
    poisoned or not, with the right id, a wrong one, or as raw bytes."""
    ids = Ids()
    kind = draw(st.sampled_from(["result", "error", "shaped", "raw"]))
    if kind == "raw":
        data = draw(raw_bytes(ids)).data.replace(b"\n", b" ")
        return lambda request_id: data
    if kind == "shaped":
        data = draw(shaped(ids)).data.replace(b"\n", b" ")
        return lambda request_id: data
    body = draw(JSON_VALUES)
    member = {"result": body} if kind == "result" else {"error": body}
    same_id = draw(st.booleans())
    ensure_ascii = draw(st.booleans())
    return lambda request_id: dumps(
        {"jsonrpc": "2.0", "id": request_id if same_id else f"{request_id}x", **member},
        ensure_ascii=ensure_ascii,
    )


@fuzz_settings(150)
@given(_client_answer(), st.sampled_from(["2025-06-18", "2025-11-25"]))
def test_fuzz_the_answers_to_server_requests_over_stdio(answer: Any, version: str) -> None:
    """Junk answers to ``elicitation/create``: the handler's request still gets exactly one answer."""
    # Virtual time: an answer that never resolves the elicitation costs its 0.5 s timeout instantly.
    trio.run(_answer_the_server, answer, version, clock=trio.testing.MockClock(autojump_threshold=0))


class _Process:
    """``mcpvisor demo --transport stdio`` with a thread reading its stdout into a queue."""

    def __init__(self, tmp: Path) -> None:
        self.stderr = (tmp / "stderr.log").open("w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcpvisor", "demo", "--transport", "stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=ROOT,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.messages: list[Any] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def send(self, *lines: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(line + b"\n" for line in lines))
        self.proc.stdin.flush()

    def until(self, ids: set[Any], timeout: float = 10.0) -> None:
        while not ids <= {m.get("id") for m in finals(self.messages)}:
            line = self.lines.get(timeout=timeout)
            assert line, f"the process closed stdout (exit {self.proc.poll()}): {self._tail()}"
            self.messages.append(strict_json(line))

    def answer(self, request_id: Any) -> Any:
        return next(m for m in finals(self.messages) if m.get("id") == request_id)

    def _tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-3000:]

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)


def test_fuzz_the_demo_over_stdio(tmp_path: Path) -> None:
    demo = _Process(tmp_path)
    try:
        demo.send(_init(1, "2025-11-25"), INITIALIZED, _tool(2, "counter"))
        demo.until({1, 2})
        assert demo.answer(2)["result"]["content"][0]["text"].startswith("count = 1 ")
        rounds = [0]

        @fuzz_settings(200)
        @given(st.data())
        def fuzz(data: st.DataObject) -> None:
            rounds[0] += 1
            ids = Ids(rounds[0])  # ids unique across examples: the process sees them all
            item = st.one_of(shaped(ids), raw_bytes(ids))
            inputs = data.draw(st.lists(item, min_size=1, max_size=8), label="inputs")
            end = f"end-{rounds[0]}"
            demo.send(*(item.data.replace(b"\n", b" ") for item in inputs))
            demo.send(json.dumps({"jsonrpc": "2.0", "id": end, "method": "ping"}).encode())
            demo.until({end} | {i for item in inputs for i in item.answered})
            check_answers(inputs, demo.messages)
            assert demo.proc.poll() is None

        fuzz()
        # the session lived through it all, its count untouched by the fuzz
        demo.send(_tool(3, "counter"))
        demo.until({3})
        assert demo.answer(3)["result"]["content"][0]["text"].startswith("count = 2 ")
    finally:
        code = demo.close()
    assert code == 0, demo._tail()
