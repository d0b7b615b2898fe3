"""The messages the runtime itself delivers to ``handle_info``: ``Down`` (monitors) and ``Exit`` (links)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from mcpvisor.supervisors import ExitReason

if TYPE_CHECKING:
    from ._ref import ActorRef


@attrs.frozen(eq=False)
class Monitor:
    """The handle ``monitor()`` returns; ``demonitor(m)`` cancels it. Compared by identity."""

    target: ActorRef
    watcher: ActorRef = attrs.field(repr=False)


@attrs.frozen
class Down:
    """A monitored actor exited (OTP's ``{'DOWN', MonitorRef, process, Pid, Reason}``)."""

    ref: ActorRef
    reason: ExitReason
    monitor: Monitor = attrs.field(repr=False)


@attrs.frozen
class Exit:
    """A linked actor exited; only actors that trap exits get it (OTP's ``{'EXIT', Pid, Reason}``)."""

    ref: ActorRef
    reason: ExitReason
