"""Property: under any mix of handler delays and call timeouts, every caller gets its own reply or a
CallTimeout, exactly when a sequential model says so; a late reply never reaches a later caller."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.actors import Caller, CallTimeout, spawn


class Delayed:
    async def handle_call(self, msg: tuple[int, int], caller: Caller) -> Any:
        ident, delay = msg
        await trio.sleep(delay)
        return ident


def model(calls: list[tuple[int, float]]) -> list[object] | None:
    """Sequential caller, one actor: call i is sent at now, starts when the actor is free.

    None when a reply and a timeout fall on the same instant: that race has no single right answer.
    """
    now, busy_until = 0.0, 0.0
    expected: list[object] = []
    for ident, (delay, timeout) in enumerate(calls):
        finish = max(now, busy_until) + delay
        busy_until = finish
        if finish - now == timeout:
            return None
        if finish - now < timeout:
            expected.append(ident)
            now = finish
        else:
            expected.append("timeout")
            now += timeout
    return expected


calls_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 6).map(lambda t: t + 0.5)), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(calls_strategy)
def test_replies_match_the_model(calls: list[tuple[int, float]]) -> None:
    expected = model(calls)
    assume(expected is not None)

    async def main() -> list[object]:
        got: list[object] = []
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, Delayed())
            for ident, (delay, timeout) in enumerate(calls):
                try:
                    got.append(await ref.call((ident, delay), timeout=timeout))
                except CallTimeout:
                    got.append("timeout")
            await ref.stop()
        return got

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4).map(lambda t: t + 0.5)), min_size=1, max_size=8)
)
def test_concurrent_callers_only_ever_see_their_own_reply(calls: list[tuple[int, float]]) -> None:
    async def main() -> dict[int, object]:
        got: dict[int, object] = {}
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, Delayed())

            async def caller(ident: int, delay: int, timeout: float) -> None:
                try:
                    got[ident] = await ref.call((ident, delay), timeout=timeout)
                except CallTimeout:
                    got[ident] = "timeout"

            async with trio.open_nursery() as callers:
                for ident, (delay, timeout) in enumerate(calls):
                    callers.start_soon(caller, ident, delay, timeout)
            await ref.stop()
        return got

    got = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert set(got) == set(range(len(calls)))
    assert all(value in (ident, "timeout") for ident, value in got.items())
