"""Logs never carry a session id in clear, and an exposed server without a Host check says so (issue 7.17).

A session id is a bearer secret; logs show ``session_label(id)`` instead.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request

import pytest
from _demo_process import start_demo
from _http_messages import BOTH, INIT
from mcpvisor.backends import MemorySessionStore
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import session_label, start_server
from mcpvisor.runtime.server.demo import server as demo
from mcpvisor.runtime.transports.http import mcp_asgi_app
from mcpvisor.runtime.transports.http._server import _warn_if_exposed
from mcpvisor.runtime.transports.memory import open_memory_client


def test_a_label_is_short_stable_and_not_the_id() -> None:
    sid = "0123456789abcdef0123456789abcdef"
    label = session_label(sid)
    assert re.fullmatch(r"s:[0-9a-f]{12}", label)
    assert label == session_label(sid) and label != session_label(sid[::-1])
    assert sid[:6] not in label
    assert re.fullmatch(r"s:[0-9a-f]{12}", session_label("\ud800 odd id"))  # never raises


class _FlakyStore(MemorySessionStore):
    """Fails one write, so the StateStoreServer logs a failed operation."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        await super().put(session_id, key, value, ttl=ttl)


async def test_no_log_line_holds_a_session_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = _FlakyStore()
    async with (
        start_server(demo, session_state_store=store) as running,
        open_memory_client(running) as client,
    ):
        sid = client.session_id
        assert sid is not None
        await client.call_tool("counter")
        with pytest.raises(JsonRpcError, match="session crashed"):
            await client.call_tool("crash")  # the keeper logs the exit and the restart
        store.fail_next = True
        with pytest.raises(JsonRpcError):
            await client.call_tool("counter")  # the store logs a failed put
        await client.call_tool("counter")
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if sid in line]
    label = session_label(sid)
    for what in ("initialized", "ChildExited", "ChildRestarted", "of 'count'"):
        assert any(label in line and what in line for line in lines), f"no {what!r} line names {label}"
    assert not [line for line in lines if "value=" in line]  # nor a stored value


async def test_an_exposed_server_without_a_host_check_warns(caplog: pytest.LogCaptureFixture) -> None:
    async with start_server(demo) as running:
        caplog.set_level(logging.WARNING, logger="mcpvisor.runtime.transports")
        _warn_if_exposed(mcp_asgi_app(running, allowed_hosts=["*"]), "0.0.0.0")
        (warning,) = [r.getMessage() for r in caplog.records]
        assert "non-loopback address 0.0.0.0 with the Host check off" in warning
        assert "allowed_hosts=[" in warning
        caplog.clear()
        _warn_if_exposed(mcp_asgi_app(running, allowed_hosts=["*"], allowed_origins=["*"]), "::")
        assert "with the Host and Origin check off" in caplog.records[0].getMessage()
        caplog.clear()
        _warn_if_exposed(mcp_asgi_app(running, allowed_hosts=["*"]), "127.0.0.1")  # loopback: fine
        _warn_if_exposed(mcp_asgi_app(running, allowed_hosts=["mcp.example.com"]), "0.0.0.0")  # checked
        assert caplog.records == []


def test_the_cli_names_allowed_hosts_and_origins() -> None:
    from mcpvisor.cli import _parser, http_limits_of

    args = _parser().parse_args(
        [
            "demo",
            "--allowed-host",
            "mcp.example.com",
            "--allowed-host",
            "*.lan",
            "--allowed-origin",
            "https://a.b",
        ]
    )
    assert http_limits_of(args) == {
        "allowed_hosts": ["mcp.example.com", "*.lan"],
        "allowed_origins": ["https://a.b"],
    }
    assert http_limits_of(_parser().parse_args(["demo"])) == {}  # serve_http's defaults
    assert http_limits_of(_parser().parse_args(["demo", "--http-parser", "h11"])) == {"http_parser": "h11"}


def test_the_cli_refuses_a_parser_for_hypercorn(capsys: pytest.CaptureFixture[str]) -> None:
    from mcpvisor.cli import main

    with pytest.raises(SystemExit) as info:
        main(["demo", "--http-server", "hypercorn", "--http-parser", "h11"])
    assert info.value.code == 2
    assert "hypercorn parses with h11 itself" in capsys.readouterr().err


def test_an_allowed_host_flag_reaches_the_server() -> None:
    proc, url = start_demo("--port", "0", "--allowed-host", "mcp.example.com")
    body = json.dumps(INIT).encode()

    def post(host: str | None) -> int:
        headers = {"content-type": "application/json", **BOTH}
        if host is not None:
            headers["host"] = host
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        assert post(None) == 403  # 127.0.0.1 is no longer on the list
        assert post("mcp.example.com") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()


async def test_the_supervision_log_names_every_child_readably(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcpvisor.supervisors")
    async with start_server(demo):  # formatted while running: a record's text is made when it is read
        started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ChildStarted(")]
    assert len(started) >= 9  # the whole server tree
    assert not [line for line in started if " object at 0x" in line]
    assert any("handle=<DynamicSupervisor 'sessions' running, 0 children>" in line for line in started)
    assert any("handle=<Janitor sweeping every 60s" in line for line in started)
