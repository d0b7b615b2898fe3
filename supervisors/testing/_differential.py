"""Real Erlang/OTP as the oracle: one scenario, run on OTP's ``supervisor`` and on ours, same trace.

A ``Scenario`` is a supervision tree (strategies, restart types, intensities, nested supervisors,
significant children, shutdown timeouts, workers that take time to stop) and a list of steps: crashes,
normal exits, API calls, planned start failures and ``ignore``, and pauses. ``run_on_otp`` runs a batch
of scenarios in one ``escript`` (all at once, one Erlang process each); ``run_on_mcpvisor`` runs one
under trio's ``MockClock``. Both record the same events in the order they happen::

    start P | fail P | ignore P | crash P | normal P | stop P
    api OP ID RESULT | root_exit | root_start_error

where ``P`` is a worker's path (``sub/w1``) and ``stop P`` is a worker that finished its clean stop (a
worker killed after its shutdown timeout records nothing).

Time: OTP counts restart windows in whole seconds of monotonic time and keeps a restart exactly
``period`` seconds old. So pauses are whole seconds, the OTP side starts every scenario 100 ms after a
whole second and re-aligns each pause to that phase, and the mcpvisor side rounds each pause's end to a
whole second too: every restart lands in a second both sides agree on, and the ``period`` boundary is
hit exactly, not by accident. Steps that take time inside (a worker's stop delay, a start that fails
after a delay) take the same time on both sides.

Length: the Erlang generator and the trio runner read and write one scenario format and must change
together, so they stay side by side.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio
import trio.lowlevel
import trio.testing

from .._child_context import current_child
from .._errors import (
    ChildAlreadyPresent,
    ChildNotFound,
    ChildStartError,
    ChildStillRunning,
    Ignore,
    RestartIntensityExceeded,
    SupervisorNotRunning,
)
from .._events import ChildExited
from .._spec import ChildSpec, ChildType, Restart
from .._supervisor import DynamicSupervisor, Supervisor, SupervisorHandle
from ._otp_oracle import SOURCE as ORACLE

# ---- scenarios ------------------------------------------------------------------------------------------


@attrs.frozen
class WorkerNode:
    """A worker: it stops cleanly ``stop_delay`` seconds after it is asked (killed if that is too long)."""

    id: str
    restart: Restart = Restart.PERMANENT
    significant: bool = False
    shutdown: float | None = None  # None: the default (5 s)
    stop_delay: float = 0.0


@attrs.frozen
class SupNode:
    """A supervisor: the root (``id`` ignored) or a nested child (its ``shutdown`` default: infinity).

    ``strategy`` and ``auto_shutdown`` are OTP's names as strings, so a scenario can hold a bad one.
    """

    children: tuple[WorkerNode | SupNode | DynNode, ...]
    strategy: str = "one_for_one"
    intensity: int = 1
    period: int = 5
    auto_shutdown: str = "never"
    id: str = "root"
    restart: Restart = Restart.PERMANENT
    significant: bool = False


@attrs.frozen
class DynNode:
    """A dynamic supervisor (OTP's ``simple_one_for_one``) under the root; children are added by
    ``("dyn_start", id, name)`` steps from ``template`` and named ``id/name``."""

    id: str
    template: WorkerNode
    intensity: int = 1
    period: int = 5
    restart: Restart = Restart.PERMANENT
    significant: bool = False


#: ``("pause", seconds)``, ``("crash", path)``, ``("normal", path)``, ``("fail", path, n, delay)``
#: (the next n starts fail, each after ``delay`` s), ``("ignore", path, n)``, ``("api", op, child_id)``
#: (on the root), ``("crash_call", path, op, child_id)`` (the call reaches the supervisor right behind
#: the crash, before the supervisor has finished reacting to it), ``("dyn_start", dyn_id, name)``,
#: ``("dyn_terminate", dyn_id, name)`` (by the child's handle: OTP's pid)
Step = tuple[Any, ...]


@attrs.frozen
class Scenario:
    root: SupNode
    steps: tuple[Step, ...] = ()
    name: str = ""


# ---- Erlang terms -------------------------------------------------------------------------------------


def _erl_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _erl_shutdown(value: float | None) -> str:
    if value is None:
        return "default"
    if math.isinf(value):
        return "infinity"
    return str(round(value * 1000))


def _erl_flags(sup: SupNode) -> str:
    return (
        f"#{{strategy => '{sup.strategy}', intensity => {sup.intensity}, period => {sup.period}, "
        f"auto_shutdown => '{sup.auto_shutdown}'}}"
    )


def _erl_tree(sup: SupNode) -> str:
    return f"{{sup, {_erl_flags(sup)}, [{', '.join(_erl_child(c) for c in sup.children)}]}}"


def _erl_child(node: WorkerNode | SupNode | DynNode) -> str:
    sig = "true" if node.significant else "false"
    if isinstance(node, DynNode):
        flags = f"#{{intensity => {node.intensity}, period => {node.period}}}"
        return (
            f"{{dyn, {_erl_str(node.id)}, {node.restart.value}, {sig}, {flags}, {_erl_child(node.template)}}}"
        )
    if isinstance(node, WorkerNode):
        return (
            f"{{worker, {_erl_str(node.id)}, {node.restart.value}, {sig}, {_erl_shutdown(node.shutdown)}, "
            f"{round(node.stop_delay * 1000)}}}"
        )
    return f"{{sup, {_erl_str(node.id)}, {node.restart.value}, {sig}, default, {_erl_tree(node)}}}"


def _erl_step(step: Step) -> str:
    kind = step[0]
    if kind == "pause":
        return f"{{pause, {int(step[1])}}}"
    if kind in ("crash", "normal"):
        return f"{{{kind}, {_erl_str(step[1])}}}"
    if kind == "fail":
        return f"{{fail, {_erl_str(step[1])}, {step[2]}, {round(step[3] * 1000)}}}"
    if kind == "ignore":
        return f"{{ignore, {_erl_str(step[1])}, {step[2]}}}"
    if kind == "api":
        return f"{{api, {step[1]}, {_erl_str(step[2])}}}"
    if kind in ("dyn_start", "dyn_terminate"):
        return f"{{{kind}, {_erl_str(step[1])}, {_erl_str(step[2])}}}"
    if kind == "crash_call":
        return f"{{crash_call, {_erl_str(step[1])}, {step[2]}, {_erl_str(step[3])}}}"
    raise ValueError(f"unknown step {step!r}")


def to_erlang(index: int, scenario: Scenario) -> str:
    """One scenario as the Erlang term the oracle reads with ``file:consult``."""
    steps = ", ".join(_erl_step(s) for s in scenario.steps)
    return f"{{{index}, {_erl_tree(scenario.root)}, [{steps}]}}.\n"


# ---- the OTP side -------------------------------------------------------------------------------------


class OtpUnavailable(RuntimeError):
    """``escript`` (Erlang/OTP) is not installed."""


def escript_path() -> str | None:
    return shutil.which("escript")


def run_on_otp(scenarios: Sequence[Scenario], *, timeout: float = 300.0) -> list[list[str]]:
    """Run ``scenarios`` on real Erlang/OTP in one ``escript``; one trace per scenario."""
    escript = escript_path()
    if escript is None:
        raise OtpUnavailable(
            "escript is not on PATH: install Erlang/OTP (Debian/Ubuntu: `apt-get install erlang-base`, "
            "macOS: `brew install erlang`) to run the OTP differential"
        )
    with tempfile.TemporaryDirectory(prefix="mcpvisor-otp-") as tmp:
        oracle = os.path.join(tmp, "otp_oracle.escript")
        with open(oracle, "w", encoding="utf-8") as f:
            f.write(ORACLE)
        path = os.path.join(tmp, "scenarios.erl.txt")
        with open(path, "w", encoding="utf-8") as f:
            for i, scenario in enumerate(scenarios):
                f.write(to_erlang(i, scenario))
        done = subprocess.run(
            [escript, oracle, path], capture_output=True, text=True, timeout=timeout, check=False
        )
    if done.returncode != 0 or not done.stdout.rstrip().endswith("done"):
        raise RuntimeError(f"the OTP oracle failed ({done.returncode}): {done.stderr[-2000:]}")
    traces: list[list[str]] = [[] for _ in scenarios]
    for line in done.stdout.splitlines():
        if "\t" in line:
            index, event = line.split("\t", 1)
            traces[int(index)].append(event)
    return traces


# ---- the mcpvisor side ---------------------------------------------------------------------------------


class PlannedFailure(Exception):
    """A start the scenario told to fail."""


class _Worker:
    __slots__ = ("alive", "event", "why")

    def __init__(self) -> None:
        self.alive = True
        self.event = trio.Event()
        self.why: str | None = None

    def wake(self, why: str) -> None:
        if self.why is None:
            self.why = why
            self.event.set()

    def request_stop(self, _reason: object = None) -> None:
        self.wake("stop")


@attrs.define
class _ScenarioRun:
    trace: list[str] = attrs.field(factory=list)
    current: dict[str, _Worker] = attrs.field(factory=dict)
    fail: dict[str, int] = attrs.field(factory=dict)
    fail_delay: dict[str, float] = attrs.field(factory=dict)
    ignore: dict[str, int] = attrs.field(factory=dict)
    root_exits: list[str] = attrs.field(factory=list)  # child ids whose exit the root has taken

    def worker_start(self, path: str, node: WorkerNode) -> Callable[..., Any]:
        async def start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            if self.fail.get(path, 0) > 0:
                self.fail[path] -= 1
                if self.fail_delay.get(path, 0.0) > 0:
                    await trio.sleep(self.fail_delay[path])
                self.trace.append(f"fail {path}")
                raise PlannedFailure(path)
            if self.ignore.get(path, 0) > 0:
                self.ignore[path] -= 1
                self.trace.append(f"ignore {path}")
                raise Ignore
            me = self.current[path] = _Worker()
            self.trace.append(f"start {path}")
            ctx = current_child()
            assert ctx is not None
            ctx._notify_on_stop(me)
            task_status.started(me)
            try:
                await me.event.wait()
                if me.why == "crash":
                    self.trace.append(f"crash {path}")
                    raise RuntimeError(f"crash {path}")
                if me.why == "normal":
                    self.trace.append(f"normal {path}")
                    return
                if node.stop_delay:
                    await trio.sleep(node.stop_delay)
                self.trace.append(f"stop {path}")
            finally:
                me.alive = False

        return start

    def spec(self, node: WorkerNode | SupNode | DynNode, prefix: str) -> ChildSpec:
        options: dict[str, Any] = {"restart": node.restart, "significant": node.significant}
        if isinstance(node, DynNode):
            dyn = DynamicSupervisor(intensity=node.intensity, period=float(node.period), name=node.id)
            return ChildSpec(node.id, dyn, type=ChildType.SUPERVISOR, **options)
        if isinstance(node, WorkerNode):
            if node.shutdown is not None:
                options["shutdown"] = node.shutdown
            return ChildSpec(node.id, self.worker_start(prefix + node.id, node), **options)
        sub = self.supervisor(node, prefix + node.id + "/")
        return ChildSpec(node.id, sub, type=ChildType.SUPERVISOR, **options)

    def supervisor(
        self, node: SupNode, prefix: str, on_event: Callable[[Any], None] | None = None
    ) -> Supervisor:
        return Supervisor(
            [self.spec(c, prefix) for c in node.children],
            strategy=node.strategy,  # OTP's names; a bad one must be refused
            intensity=node.intensity,
            period=float(node.period),
            auto_shutdown=node.auto_shutdown,
            name=prefix.rstrip("/") or "root",
            on_event=on_event,
        )

    def root_event(self, event: object) -> None:
        if isinstance(event, ChildExited):
            self.root_exits.append(event.child_id)


async def _settle(clock: trio.testing.MockClock) -> None:
    """Run until every task is blocked, moving the clock to each deadline (a stop delay, a grace
    period) as real time would; return when nothing is left waiting for time."""
    for _ in range(100_000):
        await trio.testing.wait_all_tasks_blocked()
        wait = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if math.isinf(wait):
            return
        clock.jump(wait)
    raise RuntimeError("the tree never settled")


def _api_result(outcome: object) -> str:
    if isinstance(outcome, ChildNotFound):
        return "not_found"
    if isinstance(outcome, ChildStillRunning):
        return "restarting" if "being restarted" in str(outcome) else "running"
    if isinstance(outcome, ChildAlreadyPresent):
        return "already_present"
    if isinstance(outcome, SupervisorNotRunning):
        return "exit"
    if isinstance(outcome, ChildStartError | ValueError):
        return "error"
    return "ok"


async def _main(scenario: Scenario, clock: trio.testing.MockClock) -> list[str]:
    run = _ScenarioRun()
    try:
        root = run.supervisor(scenario.root, "", on_event=run.root_event)
    except ValueError:
        return ["root_start_error"]
    stopped = trio.Event()

    async def run_root(*, task_status: trio.TaskStatus[SupervisorHandle]) -> None:
        try:
            await root(task_status=task_status)
        except RestartIntensityExceeded:
            pass  # OTP: the root exits with shutdown
        finally:
            stopped.set()

    async with trio.open_nursery() as nursery:
        try:
            handle: SupervisorHandle = await nursery.start(run_root)
        except ChildStartError:
            run.trace.append("root_start_error")
            return run.trace
        await _settle(clock)
        by_id = {c.id: c for c in scenario.root.children}
        for step in scenario.steps:
            await _step(step, run, handle, by_id, clock, nursery)
            await _settle(clock)
            if stopped.is_set():
                run.trace.append("root_exit")
                break
        else:
            handle.stop()
            await _settle(clock)
        await stopped.wait()
    return run.trace


async def _step(
    step: Step,
    run: _ScenarioRun,
    handle: SupervisorHandle,
    by_id: dict[str, WorkerNode | SupNode | DynNode],
    clock: Any,
    nursery: trio.Nursery,
) -> None:
    kind = step[0]
    if kind == "pause":
        now = trio.current_time()
        clock.jump(round(now + step[1]) - now)  # whole seconds, as the OTP side re-aligns
    elif kind in ("crash", "normal", "crash_call"):
        worker = run.current.get(step[1])
        if worker is None or not worker.alive:
            return
        taken = len(run.root_exits)
        worker.wake("crash" if kind != "normal" else kind)
        if kind == "crash_call":
            # OTP: the call is queued right behind the exit: wait until the root has taken the exit
            for _ in range(10_000):
                if len(run.root_exits) > taken:
                    break
                await trio.lowlevel.checkpoint()
            # in a task of its own: the restart in hand may take (mock) time, which _settle moves
            nursery.start_soon(_call, ("api", step[2], step[3]), run, handle, by_id)
    elif kind == "fail":
        run.fail[step[1]] = step[2]
        run.fail_delay[step[1]] = step[3]
    elif kind == "ignore":
        run.ignore[step[1]] = step[2]
    elif kind == "api":
        nursery.start_soon(_call, step, run, handle, by_id)  # a stop in it may take (mock) time
    elif kind in ("dyn_start", "dyn_terminate"):
        rows = [r for r in handle.which_children() if r.id == step[1] and r.running]
        node = by_id[step[1]]
        if not rows or not isinstance(node, DynNode):
            return
        path = f"{step[1]}/{step[2]}"
        if kind == "dyn_start":
            spec = run.spec(attrs.evolve(node.template, id=step[2]), step[1] + "/")
            nursery.start_soon(_dyn_call, run, path, "start_child", rows[0].handle.start_child, spec)
        elif path in run.current:
            target = run.current[path]
            nursery.start_soon(
                _dyn_call, run, path, "terminate_child", rows[0].handle.terminate_child, target
            )
    else:
        raise ValueError(f"unknown step {step!r}")


async def _call(
    step: Step, run: _ScenarioRun, handle: SupervisorHandle, by_id: dict[str, WorkerNode | SupNode | DynNode]
) -> None:
    op, child_id = step[1], step[2]
    outcome: object
    try:
        if op == "start_child":
            outcome = await handle.start_child(run.spec(by_id[child_id], ""))
        else:
            outcome = await getattr(handle, op)(child_id)
    except (
        ChildStartError,
        ChildNotFound,
        ChildStillRunning,
        ChildAlreadyPresent,
        SupervisorNotRunning,
    ) as exc:
        outcome = exc
    except ValueError as exc:
        outcome = exc
    run.trace.append(f"api {op} {child_id} {_api_result(outcome)}")


async def _dyn_call(run: _ScenarioRun, path: str, op: str, fn: Callable[[Any], Any], arg: Any) -> None:
    outcome: object
    try:
        outcome = await fn(arg)
    except (ChildStartError, ChildNotFound, SupervisorNotRunning) as exc:
        outcome = exc
    run.trace.append(f"api {op} {path} {_api_result(outcome)}")


def canonical(scenario: Scenario, trace: Sequence[str]) -> list[str]:
    """``trace`` with each run of consecutive ``stop`` events of one dynamic supervisor's children
    sorted: such a supervisor stops all its children at once (as simple_one_for_one does), so the
    order in which they finish is not defined, on OTP or here."""
    dyn = tuple(c.id + "/" for c in scenario.root.children if isinstance(c, DynNode))
    out: list[str] = []
    run: list[str] = []
    for event in [*trace, ""]:
        if dyn and event.startswith("stop ") and event[5:].startswith(dyn):
            run.append(event)
            continue
        out.extend(sorted(run))
        run = []
        if event:
            out.append(event)
    return out


def run_on_mcpvisor(scenario: Scenario) -> list[str]:
    """Run ``scenario`` on mcpvisor's supervisor under a ``MockClock``; its trace."""
    clock = trio.testing.MockClock()
    loggers = [logging.getLogger(n) for n in ("mcpvisor", "mcpvisor.supervisors")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        return trio.run(_main, scenario, clock, clock=clock)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# ---- generated scenarios --------------------------------------------------------------------------------

_STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
_RESTARTS = tuple(Restart)


def _worker(rng: random.Random, child_id: str, significant_ok: bool) -> WorkerNode:
    restart = rng.choice(_RESTARTS)
    significant = significant_ok and restart is not Restart.PERMANENT and rng.random() < 0.5
    shutdown = rng.choice((None, None, 1.0, 3.0))
    stop_delay = 2.0 if rng.random() < 0.15 else 0.0
    return WorkerNode(child_id, restart, significant, shutdown, stop_delay)


def _sup(rng: random.Random, sup_id: str, depth: int, significant_ok: bool) -> SupNode:
    auto_shutdown = rng.choice(("never", "never", "any_significant", "all_significant"))
    children: list[WorkerNode | SupNode | DynNode] = []
    for i in range(rng.randint(1, 4 if depth == 0 else 2)):
        if depth == 0 and rng.random() < 0.12:
            template = _worker(rng, "job", False)
            children.append(
                DynNode(f"d{i}", template, rng.randint(0, 3), rng.randint(1, 3), rng.choice(_RESTARTS))
            )
        elif depth == 0 and rng.random() < 0.2:
            children.append(_sup(rng, f"s{i}", depth + 1, auto_shutdown != "never"))
        else:
            children.append(_worker(rng, f"w{i}", auto_shutdown != "never"))
    restart = rng.choice(_RESTARTS)
    return SupNode(
        tuple(children),
        strategy=rng.choice(_STRATEGIES),
        intensity=rng.randint(0, 3),
        period=rng.randint(1, 3),
        auto_shutdown=auto_shutdown,
        id=sup_id,
        restart=restart,
        significant=significant_ok and restart is not Restart.PERMANENT and rng.random() < 0.5,
    )


def _worker_paths(sup: SupNode, prefix: str = "") -> list[str]:
    paths: list[str] = []
    for c in sup.children:
        if isinstance(c, WorkerNode):
            paths.append(prefix + c.id)
        elif isinstance(c, DynNode):
            paths.extend(f"{c.id}/n{k}" for k in range(3))
        else:
            paths.extend(_worker_paths(c, prefix + c.id + "/"))
    return paths


def random_scenario(rng: random.Random, *, max_steps: int = 8) -> Scenario:
    """A generated scenario: a tree up to two levels deep and up to ``max_steps`` steps."""
    root = _sup(rng, "root", 0, False)
    paths = _worker_paths(root)
    ids = [c.id for c in root.children]
    ops = ("terminate_child", "restart_child", "delete_child", "start_child")
    steps: list[Step] = []
    dyn = [c.id for c in root.children if isinstance(c, DynNode)]
    for _ in range(rng.randint(1, max_steps)):
        roll = rng.random()
        if dyn and roll < 0.3:
            what = rng.choice(("dyn_start", "dyn_start", "dyn_terminate"))
            steps.append((what, rng.choice(dyn), f"n{rng.randint(0, 2)}"))
        elif roll < 0.35:
            steps.append(("crash", rng.choice(paths)))
        elif roll < 0.5:
            steps.append(("normal", rng.choice(paths)))
        elif roll < 0.7:
            steps.append(("pause", rng.choice((1, root.period, root.period + 1))))
        elif roll < 0.88:
            steps.append(("api", rng.choice(ops), rng.choice(ids)))
        elif roll < 0.96:
            steps.append(("fail", rng.choice(paths), rng.randint(1, 2), 0.0))
        else:
            steps.append(("ignore", rng.choice(paths), 1))
    return Scenario(root, tuple(steps), name=f"generated #{rng.random():.6f}")


def divergence_scenarios() -> list[Scenario]:
    """The seven divergences of issue 12 that a trace can show, one scenario each (or more)."""
    w = WorkerNode
    gives_up = SupNode((w("x"),), intensity=0, id="sub", restart=Restart.TRANSIENT)
    return [
        # 1. a supervisor that gives up exits as shutdown: a transient one is not restarted ...
        Scenario(
            SupNode((w("a"), gives_up), intensity=5), (("crash", "sub/x"), ("pause", 1)), "give-up transient"
        ),
        # ... and a significant one triggers its parent's auto_shutdown
        Scenario(
            SupNode(
                (w("a"), attrs.evolve(gives_up, significant=True)),
                intensity=5,
                auto_shutdown="any_significant",
            ),
            (("crash", "sub/x"),),
            "give-up significant",
        ),
        # 2. a failing restart does not hold the supervisor (hanging_restart_loop)
        Scenario(
            SupNode((w("a"), w("b")), intensity=50, period=5),
            (("fail", "a", 1000, 0.2), ("crash_call", "a", "terminate_child", "a"), ("pause", 1)),
            "hanging restart loop",
        ),
        # 3. a nested supervisor's shutdown defaults to infinity: its worker's 6 s clean stop is waited for
        Scenario(
            SupNode((w("a"), SupNode((w("x", shutdown=10.0, stop_delay=6.0),), id="sub"))),
            (),
            "nested infinity",
        ),
        # 5. bad flags are refused at start
        Scenario(SupNode((w("a"),), strategy="one_for_al"), (), "bad strategy"),
        Scenario(SupNode((w("a"),), auto_shutdown="sometimes"), (), "bad auto_shutdown"),
        # 7. a significant child under auto_shutdown=never is refused (bad_combination)
        Scenario(SupNode((w("a", Restart.TRANSIENT, significant=True),)), (), "bad combination"),
    ]


def generated_scenarios(count: int, seed: int) -> list[Scenario]:
    rng = random.Random(seed)
    return [random_scenario(rng) for _ in range(count)]


def compare_with_otp(scenarios: Sequence[Scenario]) -> list[str]:
    """Run ``scenarios`` on OTP and on mcpvisor; a report line for each one whose traces differ."""
    expected = run_on_otp(scenarios)
    failures = []
    for scenario, otp in zip(scenarios, expected, strict=True):
        ours = canonical(scenario, run_on_mcpvisor(scenario))
        otp = canonical(scenario, otp)
        if ours != otp:
            failures.append(f"{scenario!r}\n    OTP:      {otp}\n    mcpvisor: {ours}")
    return failures


__all__ = [
    "OtpUnavailable",
    "PlannedFailure",
    "Scenario",
    "Step",
    "SupNode",
    "WorkerNode",
    "DynNode",
    "canonical",
    "compare_with_otp",
    "divergence_scenarios",
    "escript_path",
    "generated_scenarios",
    "random_scenario",
    "run_on_mcpvisor",
    "run_on_otp",
    "to_erlang",
]
