"""``serve(freeze_after_start=True)`` (what ``run_server`` sets): what start-up built is out of the
collector's reach once serving starts; without the flag (a server embedded in a larger program, tests)
nothing is frozen."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator

import pytest
import trio
from mcpvisor.runtime.server import Server
from mcpvisor.runtime.transports._run import serve


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the rest of the test run back its collector


async def frozen_while_serving(freeze: bool) -> int:
    stop = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(
                    serve, Server("gc"), transport="http", port=0, stop=stop, freeze_after_start=freeze
                )
            )
            count = gc.get_freeze_count()
            stop.set()
    return count


async def test_run_server_freezes_what_start_up_built() -> None:
    assert await frozen_while_serving(True) > 1000


async def test_an_embedded_serve_leaves_the_collector_alone() -> None:
    assert await frozen_while_serving(False) == 0
