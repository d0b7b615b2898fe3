"""Replay one timed fault schedule against a real tree and compare it with the model, in one call.

The state machine explores; this is for the cases you want to pin: a schedule written by hand (a bug
report, an incident), or one drawn with ``fault_schedules`` in a plain ``@given`` test.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._harness import OpenFn, SupervisedTree, TreeHarness, default_open
from ._machine import _diff, shape_of
from ._model import Fault, Outcome, simulate


def assert_follows_model(
    tree: SupervisedTree, faults: Sequence[Fault], *, open_fn: OpenFn = default_open
) -> Outcome:
    """Run ``tree`` under ``MockClock``, inject ``faults`` at their times, stop it; compare with OTP.

    Faults aimed at a child that is not running at that moment are skipped, as the model skips them.
    Times should be exact in binary (multiples of 1/4 s, as the strategies draw them): the clock moves
    by differences between fault times. Raises ``AssertionError`` with a diff when the real tree's child
    starts and exits differ from the model's; returns the model's outcome otherwise.
    """
    expected = simulate(shape_of(tree), faults, shutdown=True)
    harness = TreeHarness(tree, open_fn=open_fn)
    harness.start()
    try:
        now = 0.0
        for fault in faults:
            if fault.at > now:
                harness.advance(fault.at - now)
                now = fault.at
            if fault.child_id in harness.live():
                harness.inject(fault.child_id, fault.kind)
    finally:
        harness.close()
    assert not harness.unplanned, "children exited without a fault injected: " + "; ".join(harness.unplanned)
    if harness.log != list(expected.events):
        raise AssertionError("the tree did not follow the OTP model:\n" + _diff(expected.events, harness.log))
    return expected
