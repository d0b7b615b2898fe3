"""Child specifications and the vocabulary of OTP supervision.

These are plain, frozen records: a supervisor reads them but never changes them, so one spec list can
start many supervisors (and a restarted supervisor starts from exactly the spec it was given).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import attrs

#: ``shutdown=BRUTAL_KILL``: cancel the child at once, no grace period. Trio has no uncatchable kill,
#: so a child inside a shielded cancel scope or blocking sync code still runs until it yields.
BRUTAL_KILL: Final = 0.0
#: ``shutdown=INFINITY``: wait as long as the child takes (OTP's default for supervisor children).
INFINITY: Final = math.inf


class Restart(enum.Enum):
    """Which exits of a child make its supervisor restart it (OTP restart types)."""

    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit (a crash)
    TEMPORARY = "temporary"  # never restarted; removed from the supervisor when it exits


class Strategy(enum.Enum):
    """Which siblings are restarted together with a child that exited (OTP strategies)."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class ChildType(enum.Enum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


class AutoShutdown(enum.Enum):
    """When the exit of *significant* children makes the supervisor itself stop (OTP 24+)."""

    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"
    ALL_SIGNIFICANT = "all_significant"


#: A child's start function: ``async def start(*, task_status=trio.TASK_STATUS_IGNORED)``.
#: The value passed to ``task_status.started(value)`` becomes the child's handle; returning is a
#: normal exit; raising is a crash whose reason is the exception.
StartFn = Callable[..., Awaitable[Any]]


#: the ``shutdown`` a spec gets when none is given: OTP's default, 5 s for a worker and infinity for a
#: supervisor, which is only known once ``type`` is (see ``ChildSpec.__attrs_post_init__``)
class _DefaultShutdown(float):
    __slots__ = ()


_DEFAULT_SHUTDOWN: Final[float] = _DefaultShutdown(-1.0)


def _check_shutdown(_inst: object, _attr: object, value: float) -> None:
    if isinstance(value, _DefaultShutdown):
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"shutdown must be a number of seconds >= 0, BRUTAL_KILL or INFINITY, got {value!r}")


_E = TypeVar("_E", bound=enum.Enum)


def _flag(enum_type: type[_E], flag: str, value: object) -> _E:
    """A supervisor flag: the enum member, or its OTP name as a string; anything else is refused at
    construction, as OTP's supervisor refuses bad flags at start, instead of silently behaving like
    some other value."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value)
        except ValueError:
            pass
    names = ", ".join(str(m.value) for m in enum_type)
    raise ValueError(f"{flag} must be a {enum_type.__name__} ({names}), got {value!r}")


def to_strategy(value: object) -> Strategy:
    return _flag(Strategy, "strategy", value)


def to_auto_shutdown(value: object) -> AutoShutdown:
    return _flag(AutoShutdown, "auto_shutdown", value)


@attrs.frozen
class ChildSpec:
    """How to start one child and what to do when it exits.

    ``shutdown`` is how long an orderly stop waits after asking before it cancels the child. As in OTP
    it defaults to 5 s for a worker and to ``INFINITY`` for a ``ChildType.SUPERVISOR`` child, so a
    nested tree gets the time its own children's shutdowns take.
    """

    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    start: StartFn = attrs.field(validator=attrs.validators.is_callable())
    restart: Restart = attrs.field(default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart))
    shutdown: float = attrs.field(default=_DEFAULT_SHUTDOWN, validator=_check_shutdown)
    type: ChildType = attrs.field(default=ChildType.WORKER, validator=attrs.validators.instance_of(ChildType))
    significant: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if isinstance(self.shutdown, _DefaultShutdown):
            default = INFINITY if self.type is ChildType.SUPERVISOR else 5.0
            object.__setattr__(self, "shutdown", default)  # frozen: set once, during construction
        if self.significant and self.restart is Restart.PERMANENT:
            # OTP rejects this too: a permanent child never exits for good, so it cannot trigger
            # auto_shutdown.
            raise ValueError(
                f"child {self.id!r}: a significant child must be TRANSIENT or TEMPORARY, not PERMANENT"
            )
