"""Links and monitors, called from inside an actor (the caller is the actor running the callback).

As in OTP: ``monitor(target)`` delivers one ``Down(target, reason, monitor)`` to the caller's
``handle_info`` when ``target`` exits; ``link(peer)`` ties two actors so an abnormal exit of either stops
the other, unless that one traps exits (``trap_exits(True)``), in which case it gets
``Exit(peer, reason)`` in ``handle_info`` instead. ``NORMAL`` exits do not travel along links;
``SHUTDOWN`` stops a non-trapping peer with ``SHUTDOWN``; a crash stops it with ``LinkedExit``.
Monitoring or linking an actor that has already exited acts on its recorded exit at once (OTP would
report ``noproc``; we know the real reason, so we give it).
"""

from __future__ import annotations

from ._messages import Down, Monitor
from ._ref import ActorRef, _current_actor


def current_actor() -> ActorRef:
    """The ref of the actor whose callback is running (OTP's ``self()``)."""
    ref = _current_actor.get(None)
    if ref is None:
        raise RuntimeError("current_actor() called outside an actor: only actor callbacks have a self")
    return ref


def monitor(target: ActorRef) -> Monitor:
    """Watch ``target``: its exit arrives as ``Down`` in the calling actor's ``handle_info``."""
    me = current_actor()
    mon = Monitor(target, me)
    if target._done:
        assert target._reason is not None
        me._deliver_info(Down(target, target._reason, mon))
        return mon
    if target._monitored_by is None:
        target._monitored_by = {}
    target._monitored_by[mon] = None
    if me._monitoring is None:
        me._monitoring = {}
    me._monitoring[mon] = None
    return mon


def demonitor(mon: Monitor) -> None:
    """Stop watching; a ``Down`` already in the mailbox stays there (OTP without ``flush``)."""
    if mon.target._monitored_by is not None:
        mon.target._monitored_by.pop(mon, None)
    if mon.watcher._monitoring is not None:
        mon.watcher._monitoring.pop(mon, None)


def link(peer: ActorRef) -> None:
    """Link the calling actor and ``peer`` both ways."""
    me = current_actor()
    if peer is me:
        return
    if peer._reason is not None:
        # Exited (or exiting): deliver its exit signal now, as if it had just happened.
        me._exit_signal(peer, peer._reason)
        return
    if me._links is None:
        me._links = set()
    if peer._links is None:
        peer._links = set()
    me._links.add(peer)
    peer._links.add(me)


def unlink(peer: ActorRef) -> None:
    """Remove the link between the calling actor and ``peer`` (no error if there is none)."""
    me = current_actor()
    if me._links is not None:
        me._links.discard(peer)
    if peer._links is not None:
        peer._links.discard(me)


def trap_exits(flag: bool = True) -> None:
    """Make the calling actor receive linked exits as ``Exit`` messages instead of stopping with them."""
    current_actor().trap_exits = flag
