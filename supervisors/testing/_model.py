"""A pure reference model of OTP supervision: what a supervisor does when its children exit.

The model has no trio and no clock: it is the rules of Erlang/OTP's ``supervisor.erl`` written as a
function from (tree shape, timed child exits) to (observable events, final child list). Property tests
run a real supervisor and this model side by side and compare; when they disagree, the model is the
specification, so it is kept small enough to read against ``supervisor.erl`` line by line:

* ``do_restart``: a PERMANENT child is always restarted; a TRANSIENT child only after a crash; a
  TEMPORARY child never, and it is removed from the supervisor when it exits. A TRANSIENT child that
  exits normally stays in the child list, not running.
* ``restart/2``: ``one_for_one`` restarts the child alone; ``one_for_all`` stops every other running
  child in reverse start order and then starts all children in start order; ``rest_for_one`` does the
  same with the exited child and the ones started after it. TEMPORARY siblings stopped this way are
  removed, not restarted. Children in the restarted group that were not running (a TRANSIENT child that
  had exited normally) are started again, as ``start_children`` does.
* ``add_restart``: every restart keeps the earlier restart times ``r`` with ``r >= now - period`` and adds
  ``now``; if more than ``intensity`` remain, the supervisor stops all its children in reverse order and
  exits (escalation) instead of restarting.
* ``check_auto_shutdown``: when a *significant* child exits and is not restarted, ``ANY_SIGNIFICANT``
  stops the supervisor, ``ALL_SIGNIFICANT`` stops it once no significant child is running. Significant
  children stopped by the supervisor itself (as siblings of a restart) never trigger it.

* ``handle_call``: ``terminate_child`` stops a running child (not restarted; a TEMPORARY one is
  removed) and is ``ok`` for one that is not running; ``restart_child`` starts a child that is present
  and not running; ``delete_child`` forgets one that is not running; ``start_child`` appends a child
  whose id is not present. Errors are ``not_found``, ``running`` and ``already_present``. None of these
  counts towards the intensity.

Children always start successfully in the model (start failures are checked against real OTP by the
differential, ``_differential.py``), and a supervisor that has stopped ignores every later
exit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

from .._spec import AutoShutdown, ChildSpec, Restart, Strategy


class ExitKind(enum.Enum):
    """How a child exited: on its own (NORMAL, CRASH) or stopped by its supervisor (SHUTDOWN)."""

    NORMAL = "normal"
    CRASH = "crash"
    SHUTDOWN = "shutdown"

    def __repr__(self) -> str:
        return f"ExitKind.{self.name}"


class Status(enum.Enum):
    """Whether the modelled supervisor still runs, and if not, why it stopped."""

    RUNNING = "running"
    ESCALATED = "escalated"  # restart intensity exceeded
    AUTO_SHUTDOWN = "auto_shutdown"  # significant children exited
    SHUT_DOWN = "shut_down"  # stopped from outside (its parent, or the end of ``async with``)

    def __repr__(self) -> str:
        return f"Status.{self.name}"


# --- the tree's shape: the part of a spec that decides restarts ----------------------------------------


@attrs.frozen
class ChildShape:
    """One child as the model sees it: its id, restart type and significance (no start function)."""

    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart))
    significant: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.significant and self.restart is Restart.PERMANENT:
            raise ValueError(f"child {self.id!r}: a significant child must be TRANSIENT or TEMPORARY")

    @classmethod
    def of(cls, spec: ChildSpec) -> ChildShape:
        """The shape of a real child spec."""
        return cls(spec.id, spec.restart, spec.significant)


def _child_tuple(children: Iterable[ChildShape]) -> tuple[ChildShape, ...]:
    return tuple(children)


def _check_unique_ids(_inst: object, _attr: object, children: tuple[ChildShape, ...]) -> None:
    ids = [c.id for c in children]
    if len(set(ids)) != len(ids):
        raise ValueError(f"child ids must be unique, got {ids!r}")


@attrs.frozen
class SupervisorShape:
    """A supervisor as the model sees it: its children in start order and its flags."""

    children: tuple[ChildShape, ...] = attrs.field(converter=_child_tuple, validator=_check_unique_ids)
    strategy: Strategy = attrs.field(
        default=Strategy.ONE_FOR_ONE, validator=attrs.validators.instance_of(Strategy)
    )
    intensity: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    period: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    auto_shutdown: AutoShutdown = attrs.field(
        default=AutoShutdown.NEVER, validator=attrs.validators.instance_of(AutoShutdown)
    )

    @classmethod
    def of(
        cls,
        children: Iterable[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
    ) -> SupervisorShape:
        """The shape of a real supervisor configuration (the same arguments ``open_supervisor`` takes)."""
        return cls(tuple(ChildShape.of(c) for c in children), strategy, intensity, period, auto_shutdown)

    def child(self, child_id: str) -> ChildShape:
        for c in self.children:
            if c.id == child_id:
                return c
        raise KeyError(child_id)


# --- inputs and outputs --------------------------------------------------------------------------------


def _check_fault_kind(_inst: object, _attr: object, kind: ExitKind) -> None:
    if kind is ExitKind.SHUTDOWN:
        raise ValueError("a fault is a child's own exit: NORMAL or CRASH, not SHUTDOWN")


@attrs.frozen
class Fault:
    """At time ``at`` (seconds since the supervisor started), child ``child_id`` exits by itself."""

    at: float
    child_id: str
    kind: ExitKind = attrs.field(default=ExitKind.CRASH, validator=_check_fault_kind)


@attrs.frozen
class Started:
    """The supervisor started a child; ``restart`` is False for the initial start, True afterwards."""

    child_id: str
    restart: bool = False


@attrs.frozen
class Exited:
    """A child stopped: by itself (NORMAL, CRASH) or because its supervisor stopped it (SHUTDOWN)."""

    child_id: str
    kind: ExitKind


@attrs.frozen
class Escalated:
    """The supervisor exceeded its restart intensity, stopped its children, and exited with an error."""


@attrs.frozen
class AutoShutdownTriggered:
    """Significant children exited: the supervisor stopped its children and exited normally."""


Event = Started | Exited | Escalated | AutoShutdownTriggered


@attrs.frozen
class ChildEntry:
    """A child the supervisor knows about (OTP's ``which_children`` row): running or not."""

    id: str
    running: bool


# --- the state machine ---------------------------------------------------------------------------------


@attrs.frozen
class SupervisionModel:
    """The state of a modelled supervisor. Immutable: every transition returns a new model and events.

    Start with ``SupervisionModel.start(shape)``; feed exits with ``model.exit(fault)``.
    """

    shape: SupervisorShape
    children: tuple[ChildEntry, ...]
    restarts: tuple[float, ...] = ()
    status: Status = Status.RUNNING
    now: float = 0.0
    #: every id started at least once: a later start of it is reported as ``Started(restart=True)``
    ever_started: frozenset[str] = frozenset()

    @classmethod
    def start(cls, shape: SupervisorShape) -> tuple[SupervisionModel, tuple[Event, ...]]:
        """All children start, in order (OTP ``init``)."""
        ids = frozenset(c.id for c in shape.children)
        model = cls(shape, tuple(ChildEntry(c.id, True) for c in shape.children), ever_started=ids)
        return model, tuple(Started(c.id) for c in shape.children)

    # queries ------------------------------------------------------------------------------------------

    def running(self) -> tuple[str, ...]:
        """Ids of the running children in start order (empty once the supervisor stopped)."""
        return tuple(c.id for c in self.children if c.running)

    def is_running(self, child_id: str) -> bool:
        return any(c.id == child_id and c.running for c in self.children)

    # transitions --------------------------------------------------------------------------------------

    def exit(self, fault: Fault) -> tuple[SupervisionModel, tuple[Event, ...]]:
        """Child ``fault.child_id`` exits by itself at ``fault.at``.

        Exits of children that are not running (or of a stopped supervisor) change nothing and return no
        events, so a schedule generated without knowing the future is always valid input.
        """
        if fault.at < self.now:
            raise ValueError(f"faults must come in time order: {fault.at} is before {self.now}")
        m = attrs.evolve(self, now=fault.at)
        if m.status is not Status.RUNNING or not m.is_running(fault.child_id):
            return m, ()
        spec = m.shape.child(fault.child_id)
        events: list[Event] = [Exited(spec.id, fault.kind)]
        restarts_it = spec.restart is Restart.PERMANENT or (
            spec.restart is Restart.TRANSIENT and fault.kind is ExitKind.CRASH
        )
        if not restarts_it:
            m = m._forget(spec.id) if spec.restart is Restart.TEMPORARY else m._set(spec.id, False)
            if m._auto_shutdown_due(spec):
                m, stop_events = m._stop_all(Status.AUTO_SHUTDOWN)
                return m, (*events, *stop_events, AutoShutdownTriggered())
            return m, tuple(events)
        m = m._set(spec.id, False)
        window = (*(r for r in m.restarts if r >= fault.at - m.shape.period), fault.at)
        m = attrs.evolve(m, restarts=window)
        if len(window) > m.shape.intensity:
            m, stop_events = m._stop_all(Status.ESCALATED)
            return m, (*events, *stop_events, Escalated())
        m, restart_events = m._restart_group(spec.id)
        return m, (*events, *restart_events)

    # the handle's API (supervisor.erl's handle_call) ---------------------------------------------------

    def _entry(self, child_id: str) -> ChildEntry | None:
        for c in self.children:
            if c.id == child_id:
                return c
        return None

    def terminate_child(self, child_id: str) -> tuple[SupervisionModel, tuple[Event, ...], str]:
        entry = self._entry(child_id)
        if entry is None:
            return self, (), "not_found"
        events: tuple[Event, ...] = (Exited(child_id, ExitKind.SHUTDOWN),) if entry.running else ()
        if self.shape.child(child_id).restart is Restart.TEMPORARY:
            return self._forget(child_id), events, "ok"
        return self._set(child_id, False), events, "ok"

    def restart_child(self, child_id: str) -> tuple[SupervisionModel, tuple[Event, ...], str]:
        entry = self._entry(child_id)
        if entry is None:
            return self, (), "not_found"
        if entry.running:
            return self, (), "running"
        return self._set(child_id, True), (Started(child_id, restart=True),), "ok"

    def delete_child(self, child_id: str) -> tuple[SupervisionModel, tuple[Event, ...], str]:
        entry = self._entry(child_id)
        if entry is None:
            return self, (), "not_found"
        if entry.running:
            return self, (), "running"
        return self._forget(child_id), (), "ok"

    def start_child(self, child_id: str) -> tuple[SupervisionModel, tuple[Event, ...], str]:
        """Start the shape's child ``child_id`` again, appended last (it must have been deleted)."""
        if self._entry(child_id) is not None:
            return self, (), "already_present"
        restart = child_id in self.ever_started
        m = attrs.evolve(
            self,
            children=(*self.children, ChildEntry(child_id, True)),
            ever_started=self.ever_started | {child_id},
        )
        return m, (Started(child_id, restart=restart),), "ok"

    def shutdown(self) -> tuple[SupervisionModel, tuple[Event, ...]]:
        """The supervisor is stopped from outside: its running children stop in reverse order."""
        if self.status is not Status.RUNNING:
            return self, ()
        return self._stop_all(Status.SHUT_DOWN)

    # helpers ------------------------------------------------------------------------------------------

    def _set(self, child_id: str, running: bool) -> SupervisionModel:
        return attrs.evolve(
            self, children=tuple(ChildEntry(c.id, running) if c.id == child_id else c for c in self.children)
        )

    def _forget(self, child_id: str) -> SupervisionModel:
        return attrs.evolve(self, children=tuple(c for c in self.children if c.id != child_id))

    def _auto_shutdown_due(self, exited: ChildShape) -> bool:
        mode = self.shape.auto_shutdown
        if mode is AutoShutdown.NEVER or not exited.significant:
            return False
        if mode is AutoShutdown.ANY_SIGNIFICANT:
            return True
        return not any(self.shape.child(c.id).significant and c.running for c in self.children)

    def _stop_all(self, status: Status) -> tuple[SupervisionModel, tuple[Event, ...]]:
        events = tuple(Exited(c.id, ExitKind.SHUTDOWN) for c in reversed(self.children) if c.running)
        children = tuple(ChildEntry(c.id, False) for c in self.children)
        return attrs.evolve(self, children=children, status=status), events

    def _restart_group(self, child_id: str) -> tuple[SupervisionModel, tuple[Event, ...]]:
        strategy = self.shape.strategy
        if strategy is Strategy.ONE_FOR_ONE:
            return self._set(child_id, True), (Started(child_id, restart=True),)
        ids = [c.id for c in self.children]
        first = 0 if strategy is Strategy.ONE_FOR_ALL else ids.index(child_id)
        group = self.children[first:]
        events: list[Event] = []
        m = self
        for c in reversed(group):  # stop the others, newest first
            if c.running:
                events.append(Exited(c.id, ExitKind.SHUTDOWN))
            if self.shape.child(c.id).restart is Restart.TEMPORARY and c.id != child_id:
                m = m._forget(c.id)  # TEMPORARY siblings are removed, never restarted
            else:
                m = m._set(c.id, False)
        for c in m.children[first:]:  # then start the group again, in order
            m = m._set(c.id, True)
            events.append(Started(c.id, restart=True))
        return m, tuple(events)


# --- whole runs ----------------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """Everything a run of the model produced."""

    events: tuple[Event, ...]
    children: tuple[ChildEntry, ...]
    status: Status


def simulate(shape: SupervisorShape, faults: Sequence[Fault], *, shutdown: bool = False) -> Outcome:
    """Run the model: start ``shape``, apply ``faults`` in order, optionally stop it from outside.

    The events include the initial ``Started`` of every child.
    """
    model, events = SupervisionModel.start(shape)
    collected = list(events)
    for fault in faults:
        model, events = model.exit(fault)
        collected.extend(events)
    if shutdown:
        model, events = model.shutdown()
        collected.extend(events)
    return Outcome(tuple(collected), model.children, model.status)
