"""Choosing backends by URL or by object."""

from __future__ import annotations

import sys
from pathlib import Path

import mcpvisor.backends as backends
import pytest
from mcpvisor.backends import (
    MemorySessionStore,
    MemoryTaskBackend,
    UnsupportedBackendURL,
    session_store_from_url,
    task_backend_from_url,
)


def test_memory_urls() -> None:
    assert isinstance(session_store_from_url("memory://"), MemorySessionStore)
    assert isinstance(task_backend_from_url("MEMORY://"), MemoryTaskBackend)


async def test_sqlite_url_builds_a_working_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = session_store_from_url(f"sqlite:///{path}")
    assert type(store).__name__ == "SQLiteSessionStore"
    async with store:  # type: ignore[attr-defined]
        await store.put("s", "k", b"v")
        assert await store.get("s", "k") == b"v"
    assert path.exists()
    assert type(task_backend_from_url(f"sqlite:///{path}")).__name__ == "SQLiteTaskBackend"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://x", "unknown scheme 'ftp'"),
        ("memory", "not a URL"),
        ("memory://host", "takes no host"),
        ("sqlite://", "file path"),
        ("sqlite:///", "file path"),
        ("redis://", "needs a host"),
        ("redis://h:99999/0", "bad port"),
        ("redis://h:6379/zero", "must be a number"),
    ],
)
def test_bad_urls_list_the_supported_forms(url: str, why: str) -> None:
    with pytest.raises(UnsupportedBackendURL, match=why) as info:
        session_store_from_url(url)
    assert (
        "memory://" in str(info.value) and "sqlite:///" in str(info.value) and "redis://" in str(info.value)
    )
    with pytest.raises(ValueError, match=why):  # UnsupportedBackendURL is a ValueError too
        task_backend_from_url(url)


def test_objects_pass_through_after_a_protocol_check() -> None:
    store = MemorySessionStore()
    tasks = MemoryTaskBackend()
    assert session_store_from_url(store) is store
    assert task_backend_from_url(tasks) is tasks
    with pytest.raises(TypeError, match="is not a SessionStateStore"):
        session_store_from_url(tasks)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not a TaskBackend"):
        task_backend_from_url(object())  # type: ignore[arg-type]


def test_importing_backends_does_not_import_redis_or_sqlite_modules() -> None:
    code = (
        "import sys, mcpvisor.backends;"
        "print(sorted(m for m in sys.modules"
        " if m.endswith(('._redis', '._sqlite')) or m in ('coredis', 'glide')))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert backends.SQLiteTaskBackend.__name__ == "SQLiteTaskBackend"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        backends.Nope  # noqa: B018
