"""Fuzzing Streamable HTTP at the JSON-RPC level (issue 7, item 3), on both servers we ship.

Well-formed HTTP requests (``http.client``) carry fuzzed bodies: raw bytes and JSON-RPC shapes, with the
session header, without it, with an unknown one, with either era's version header. The server (a real
``mcpvisor run`` process) stays up; every answer is a clean 2xx or 4xx whose body is strict JSON text of
JSON-RPC messages (or SSE events of them); a request with a readable id answered 200 is answered exactly
once; and a bystander session's counter is unchanged. The HTTP framing layer (chunk sizes, lengths,
header sizes) is fuzzed elsewhere: here every request is framed correctly.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _fuzz_messages import (
    Ids,
    Sent,
    check_answers,
    check_message,
    finals,
    fuzz_settings,
    raw_bytes,
    shaped,
    strict_json,
)
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
BANNER = "mcpvisor: serving"
TOOLS = (
    "peek",
    "surrogate_text",
    "surrogate_structured",
    "nan_structured",
    "surrogate_log",
    "nan_progress",
    "deep_result",
)
ACCEPTS = ("application/json, text/event-stream", "application/json", "text/event-stream", "*/*")
CLEAN_STATUSES = {200, 202, 204, 400, 403, 404, 405, 406, 413, 415, 429}
#: Header values http.client can send: visible Latin-1 (obs-text included), spaces and tabs.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30
)


class _Server:
    """``mcpvisor run tests/_hostile_app.py:app --transport http`` on a free loopback port."""

    def __init__(self, tmp: Path, http_server: str) -> None:
        self.log = (tmp / "server.log").open("w+")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcpvisor",
                "run",
                "tests/_hostile_app.py:app",
                "--transport",
                "http",
                "--port",
                "0",
                "--http-server",
                http_server,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stderr is not None
        line = ""
        for _ in range(200):
            line = self.proc.stderr.readline()
            if BANNER in line or not line:
                break
        if BANNER not in line:
            self.stop()
            raise AssertionError(f"the server did not start (last line: {line!r})")
        url = line.rsplit(" ", 1)[1].strip()
        self.port = int(url.split(":")[2].split("/")[0])
        # keep draining stderr so the server never blocks on a full pipe
        self._drain = threading.Thread(target=self._copy_log, daemon=True)
        self._drain.start()

    def _copy_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.write(line)

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return self.request("POST", body, {"content-type": "application/json", **headers})

    def request(
        self, method: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One exchange on a fresh connection. A GET's SSE stream may stay open by design: its body
        is not read."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, "/mcp", body=body, headers=headers)
            response = conn.getresponse()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            if method == "GET" and answer_headers.get("content-type", "").startswith("text/event-stream"):
                return response.status, answer_headers, b""
            return response.status, answer_headers, response.read()
        finally:
            conn.close()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if hasattr(self, "_drain"):
            self._drain.join(timeout=10)
        return self.proc.returncode

    def tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]


def _messages(status: int, headers: dict[str, str], body: bytes) -> list[Any]:
    """The JSON-RPC messages of one HTTP answer, read strictly."""
    kind = headers.get("content-type", "")
    if status == 202 or not body:
        assert not body and status in (200, 202, 405), (status, body[:200])
        return []
    if kind.startswith("text/event-stream"):
        out = []
        for event in body.decode("utf-8").split("\n\n"):
            data = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
            if data and "".join(data):
                out.append(strict_json("\n".join(data).encode()))
        return out
    assert kind.startswith("application/json"), (status, kind, body[:200])
    return [strict_json(body)]


def _initialize(server: _Server, version: str = "2025-11-25") -> str:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}).encode()
    status, headers, _ = server.post(init, {"accept": "application/json"})
    assert status == 200
    session = {"mcp-session-id": headers["mcp-session-id"], "mcp-protocol-version": version}
    note = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    assert server.post(note, {"accept": "application/json", **session})[0] == 202
    return session["mcp-session-id"]


def _call(server: _Server, session_id: str, tool: str) -> Any:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    headers = {
        "accept": "application/json",
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-11-25",
    }
    status, _, answer = server.post(json.dumps(body).encode(), headers)
    assert status == 200, answer
    return strict_json(answer)["result"]["structuredContent"]["result"]


@st.composite
def _headers(draw: st.DrawFn, session_id: str) -> tuple[dict[str, str], bool]:
    """Request headers, and whether a batch would be read as one (a session, no version or 2025-03-26)."""
    headers = {"accept": draw(st.sampled_from(ACCEPTS))}
    session = draw(st.sampled_from(["fuzz", "fuzz", "none", "unknown"]))
    if session == "fuzz":
        headers["mcp-session-id"] = session_id
    elif session == "unknown":
        headers["mcp-session-id"] = "0" * 32
    version = draw(st.sampled_from([None, "2025-03-26", "2025-11-25", "2026-07-28", "junk"]))
    if version is not None:
        headers["mcp-protocol-version"] = version
    if draw(st.integers(0, 5)) == 0:
        headers["mcp-method"] = draw(st.sampled_from(["tools/call", "ping", "x"]))
    return headers, session == "fuzz" and version in (None, "2025-03-26")


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
def test_fuzz_http_bodies(tmp_path: Path, http_server: str) -> None:
    server = _Server(tmp_path, http_server)
    try:
        bystander = _initialize(server)
        assert _call(server, bystander, "counter") == 1
        assert _call(server, bystander, "counter") == 2
        fuzz_session = _initialize(server, "2025-03-26")
        rounds = [0]

        @fuzz_settings(150)
        @given(st.data())
        def fuzz(data: st.DataObject) -> None:
            rounds[0] += 1
            ids = Ids(rounds[0])
            for _ in range(data.draw(st.integers(1, 6), label="posts")):
                headers, batches = data.draw(_headers(fuzz_session), label="headers")
                sent: Sent = data.draw(
                    st.one_of(shaped(ids, TOOLS, batches=batches), raw_bytes(ids)), label="body"
                )
                status, answer_headers, body = server.post(sent.data, headers)
                assert status in CLEAN_STATUSES, (status, sent.data[:300], body[:300], server.tail())
                messages = _messages(status, answer_headers, body)
                if status >= 400:
                    assert len(messages) == 1 and "error" in messages[0], (status, messages)
                    check_message(messages[0])
                elif status == 200:
                    list(finals(messages))  # every message well formed
                    check_answers([sent], messages)
            assert server.proc.poll() is None

        fuzz()
        assert _call(server, bystander, "peek") == 2  # the bystander's state is untouched
    finally:
        code = server.stop()
    assert code == 0, server.tail()


@st.composite
def _any_request(draw: st.DrawFn, session_id: str, ids: Ids) -> tuple[str, bytes | None, dict[str, str]]:
    """Any method, each MCP header absent, meaningful or junk, and a body for POST."""
    method = draw(st.sampled_from(["GET", "POST", "POST", "DELETE", "OPTIONS", "PUT"]))

    def pick(*meaningful: str) -> str | None:
        return draw(st.one_of(st.none(), st.sampled_from(meaningful), HEADER_TEXT))

    candidates = {
        "accept": pick(*ACCEPTS),
        "content-type": pick("application/json", "application/json; charset=utf-8", "text/plain"),
        "mcp-session-id": pick(session_id, session_id, "0" * 32),
        "mcp-protocol-version": pick("2025-03-26", "2025-11-25", "2026-07-28"),
        "last-event-id": pick("0-0", "1-1", "1" * 30 + "-1", "-"),
        "origin": pick("http://localhost", "http://127.0.0.1:1", "https://evil.example", "null"),
        "mcp-method": pick("tools/call", "ping"),
        "mcp-name": pick("peek", "=?base64?cGVlaw==?=", "=?base64?!!?="),
        "mcp-param-region": pick("eu", "=?base64?ZXU=?="),
        "authorization": pick("Bearer x"),
    }
    headers = {name: value for name, value in candidates.items() if value is not None}
    body = None
    if method == "POST":
        body = draw(st.one_of(shaped(ids, TOOLS), raw_bytes(ids))).data
    return method, body, headers


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
def test_fuzz_http_headers_and_methods(tmp_path: Path, http_server: str) -> None:
    """Every method with fuzzed MCP headers (session, versions, Last-Event-ID, Origin, Mcp-*)."""
    server = _Server(tmp_path, http_server)
    try:
        bystander = _initialize(server)
        assert _call(server, bystander, "counter") == 1
        rounds = [0]

        @fuzz_settings(100)
        @given(st.data())
        def fuzz(data: st.DataObject) -> None:
            rounds[0] += 1
            fuzz_session = _initialize(server, data.draw(st.sampled_from(["2025-03-26", "2025-11-25"])))
            ids = Ids(rounds[0])
            for _ in range(data.draw(st.integers(1, 4), label="requests")):
                method, body, headers = data.draw(_any_request(fuzz_session, ids), label="request")
                status, answer_headers, answer = server.request(method, body, headers)
                assert status in CLEAN_STATUSES, (status, method, headers, answer[:300], server.tail())
                if answer:
                    messages = _messages(status, answer_headers, answer)
                    list(finals(messages))
                    if status >= 400:
                        assert len(messages) == 1 and "error" in messages[0], (status, messages)
            assert server.proc.poll() is None

        fuzz()
        assert _call(server, bystander, "peek") == 1  # the bystander's state is untouched
    finally:
        code = server.stop()
    assert code == 0, server.tail()
