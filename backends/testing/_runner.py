"""Run async backend calls from hypothesis's synchronous rules.

hypothesis-trio no longer imports, so each state-machine instance (one hypothesis example) gets its own
``trio.run`` in a helper thread, and every rule hands its coroutine to it with ``trio.from_thread.run``.
One trio run per example means a backend's connections and locks live in exactly one event loop, from
the factory to ``aclose``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class TrioRunner:
    """A trio event loop in a daemon thread, running coroutines handed to it one at a time."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="backend-kit-trio", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._crash is not None:
            raise self._crash

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:
            self._crash = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        self._ready.set()
        await self._stop.wait()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(*args)`` in the loop; a call that takes longer than the timeout fails the test."""

        async def bounded() -> T:
            with trio.fail_after(self._timeout):
                return await fn(*args)

        return trio.from_thread.run(bounded, trio_token=self._token)

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout=self._timeout)
