"""The ``mcpvisor`` command line: target loading, its errors, stdio EOF and the HTTP demo."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _demo_process import start_demo
from _http_messages import INIT

from mcpvisor.cli import TargetError, load_target, main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("does/not/exist.py:server", "no such file"),
        ("mcpvisor.runtime.server.demo:nothing", "has no attribute 'nothing'"),
        ("json:dumps", "not an mcpvisor Server"),
        ("no_such_module_xyz:server", "cannot import module"),
    ],
)
def test_bad_target_is_a_clear_error_and_exit_2(
    target: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", target])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "mcpvisor: error: bad target" in captured.err
    assert captured.out == ""


def test_bad_target_exit_status_of_the_real_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "run", "nowhere.py:server"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "no such file" in done.stderr and done.stdout == ""


def test_load_target_from_file_and_module(tmp_path: Path) -> None:
    app = tmp_path / "my_app.py"
    app.write_text("from mcpvisor import Server\nserver = Server('from-file')\nother = Server('other')\n")
    assert load_target(f"{app}:server").name == "from-file"
    assert load_target(f"{app}:other").name == "other"
    assert load_target(str(app)).name == "from-file"  # the attribute defaults to `server`
    assert load_target("mcpvisor.runtime.server.demo:server").name == "mcpvisor-demo"
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(TargetError, match="boom at import"):
        load_target(f"{broken}:server")


def test_bad_backend_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "mcpvisor.runtime.server.demo:server", "--state-store", "nosuch://x"])
    assert info.value.code == 2 and "unknown scheme" in capsys.readouterr().err


def test_stdio_eof_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "demo", "--transport", "stdio"],
        input='{"jsonrpc":"2.0","id":1,"method":"ping"}\n',
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 0
    assert done.stdout == '{"jsonrpc":"2.0","id":1,"result":{}}\n'  # ping is served before initialize


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_http_demo_prints_its_url_serves_and_stops_in_order(stop: signal.Signals) -> None:
    proc, url = start_demo("--port", "0")
    try:
        assert proc.stderr is not None
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        body = INIT
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and response.headers["mcp-session-id"]
            assert b'"serverInfo":{"name":"mcpvisor-demo"' in response.read()
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
        assert "SupervisorStopped(supervisor='server'" in proc.stderr.read()  # an orderly stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
def test_http_server_flag_picks_the_server(http_server: str) -> None:
    proc, url = start_demo("--port", "0", "--http-server", http_server)
    try:
        request = urllib.request.Request(url, data=b"{}", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 400  # no Mcp-Session-Id: served, and refused as the spec says
        server_header = info.value.headers.get("server", "")
        assert ("hypercorn" in server_header) == (http_server == "hypercorn")
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        proc.stderr.close()


def test_a_bad_http_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--http-server", "nginx"])
    assert info.value.code == 2 and "invalid choice: 'nginx'" in capsys.readouterr().err


def test_limit_flags_become_server_options() -> None:
    from mcpvisor.cli import _parser, limit_options

    defaults = limit_options(_parser().parse_args(["demo"]))
    assert defaults == {
        "max_sessions": 10_000,
        "session_idle_timeout": 1800.0,
        "session_restart_intensity": 3,
        "session_restart_period": 5.0,
        "max_requests_per_session": 128,
        "max_queued_requests_per_session": 1024,
        "max_stateless_requests": 1024,
    }
    flags = [
        "run",
        "app.py:server",
        "--max-sessions",
        "0",
        "--session-idle-timeout",
        "60",
        "--session-restart-intensity",
        "5",
        "--session-restart-period",
        "2.5",
        "--max-requests-per-session",
        "8",
        "--max-queued-requests-per-session",
        "16",
        "--max-stateless-requests",
        "32",
    ]
    assert limit_options(_parser().parse_args(flags)) == {
        "max_sessions": None,  # 0: no cap
        "session_idle_timeout": 60.0,
        "session_restart_intensity": 5,
        "session_restart_period": 2.5,
        "max_requests_per_session": 8,
        "max_queued_requests_per_session": 16,
        "max_stateless_requests": 32,
    }


@pytest.mark.parametrize("flag", ["--max-requests-per-session", "--session-idle-timeout"])
def test_a_bad_limit_is_a_usage_error(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", flag, "-1"])
    assert info.value.code == 2 and f"argument {flag}" in capsys.readouterr().err


def test_max_sessions_flag_caps_the_demo_with_503() -> None:
    proc, url = start_demo("--port", "0", "--max-sessions", "1")
    body = INIT
    headers = {"content-type": "application/json", "accept": "application/json"}
    try:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 503 and int(info.value.headers["retry-after"]) >= 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        proc.stderr.close()


def _post(url: str, message: dict[str, object]) -> dict[str, object]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if message["method"] == "server/discover":  # a 2026-07-28 request repeats its envelope in headers
        headers |= {"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"}
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: dict[str, object] = json.loads(answer.read())
        return body


INITIALIZE: dict[str, object] = INIT
DISCOVER = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}


@pytest.mark.parametrize(
    ("protocol", "served", "refused", "supported"),
    [
        ("2026-07-28", DISCOVER, INITIALIZE, ["2026-07-28"]),
        ("2025-11-25", INITIALIZE, DISCOVER, ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]),
    ],
)
def test_the_protocol_flag_serves_one_era(
    protocol: str, served: dict[str, object], refused: dict[str, object], supported: list[str]
) -> None:
    proc, url = start_demo("--port", "0", "--protocol", protocol)
    try:
        assert "result" in _post(url, served)
        try:
            answer = _post(url, refused)
        except urllib.error.HTTPError as exc:  # an envelope the server does not serve may be a 4xx
            answer = json.loads(exc.read())
        error = answer["error"]
        assert isinstance(error, dict) and error["code"] == -32022
        assert error["data"]["supported"] == supported
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        proc.stderr.close()


def test_a_bad_protocol_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--protocol", "2024-01-01"])
    assert info.value.code == 2 and "invalid choice: '2024-01-01'" in capsys.readouterr().err
