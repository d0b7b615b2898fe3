"""A backend that cannot work is refused at start, in one line, before anything is served (issue 7.14)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing
from mcpvisor.backends import (
    BackendUnavailable,
    MemorySessionStore,
    MemoryTaskBackend,
    check_session_store,
)
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.tree._runtime import _backend_name

ROOT = Path(__file__).resolve().parent.parent


class _ReadOnlyStore(MemorySessionStore):
    """Answers reads, refuses writes: a read-only file or a Redis replica."""

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        raise PermissionError("attempt to write a readonly database")


class _SilentStore(MemorySessionStore):
    """Never answers: a Redis that was stopped with SIGSTOP, a network that drops packets."""

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await trio.sleep_forever()


class _BrokenTasks(MemoryTaskBackend):
    async def get(self, task_id: str) -> None:  # type: ignore[override]
        raise ConnectionError("no route to the task database")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again: nothing listens there


async def test_sqlite_in_a_missing_directory_is_refused_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/state.db"
    with pytest.raises(BackendUnavailable) as info:
        async with start_server(Server("x"), session_state_store=url):
            pytest.fail("served on a store that cannot open its file")
    message = str(info.value)
    assert message.startswith(f"session state store {url} cannot be used: OperationalError")
    assert "\n" not in message


async def test_a_task_backend_that_cannot_be_read_is_refused_and_named() -> None:
    with pytest.raises(BackendUnavailable, match=r"^task backend _BrokenTasks object cannot be used: "):
        async with start_server(Server("x"), task_backend=_BrokenTasks()):
            pytest.fail("served on a task backend that cannot read")


async def test_a_store_that_refuses_writes_is_refused_although_it_reads() -> None:
    with pytest.raises(BackendUnavailable, match="PermissionError: attempt to write a readonly database"):
        async with start_server(Server("x"), session_state_store=_ReadOnlyStore()):
            pytest.fail("served on a read-only store")


async def test_a_store_that_never_answers_fails_after_the_check_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    with pytest.raises(BackendUnavailable, match=r"did not answer within 2s"):
        async with start_server(Server("x"), session_state_store=_SilentStore(), backend_check_timeout=2):
            pytest.fail("served on a store that never answers")
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_the_check_can_be_skipped_and_leaves_nothing_behind() -> None:
    silent = _SilentStore()
    async with start_server(Server("x"), session_state_store=silent, backend_check_timeout=None):
        pass  # no probe, so no hang
    store = MemorySessionStore()
    await check_session_store(store, name="memory://")
    assert await store.keys("mcpvisor:startup-check") == []
    with pytest.raises(ValueError, match="positive number of seconds"):
        await check_session_store(store, name="memory://", timeout=0)


async def test_an_unreachable_redis_is_refused_at_start() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    with pytest.raises(BackendUnavailable, match=rf"^session state store {url} cannot be used: "):
        async with start_server(Server("x"), session_state_store=url):
            pytest.fail("served on a Redis nobody runs")


def test_backend_names_are_urls_or_class_names() -> None:
    assert _backend_name("memory://") == "memory://"
    assert _backend_name(MemorySessionStore()) == "MemorySessionStore object"


def test_the_command_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/x.db"
    done = subprocess.run(
        [sys.executable, "-m", "mcpvisor", "demo", "--port", "0", "--state-store", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "serving" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"mcpvisor: error: session state store {url} cannot be used: "
        "OperationalError: unable to open database file"
    )
