"""``Registry``: names for actors, one registry per server (no global state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._errors import ActorExited, NameTaken

if TYPE_CHECKING:
    from ._ref import ActorRef


class Registry:
    """Maps names to running actors. A name is forgotten when its actor exits, so a restarted actor can
    register the same name again; looking up a name therefore never yields an exited actor."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[str, ActorRef] = {}

    def register(self, name: str, ref: ActorRef) -> None:
        """Register ``ref`` under ``name``; ``NameTaken`` if a running actor holds it already."""
        if not ref.alive:
            assert ref._reason is not None
            raise ActorExited(ref, ref._reason)
        holder = self._names.get(name)
        if holder is not None:
            if holder is ref:
                return
            raise NameTaken(name, holder)
        self._names[name] = ref
        if ref._names is None:
            ref._names = []
        ref._names.append((self, name))

    def whereis(self, name: str) -> ActorRef | None:
        """The running actor registered as ``name``, or None."""
        return self._names.get(name)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error if it is not registered)."""
        ref = self._names.pop(name, None)
        if ref is not None and ref._names:
            ref._names = [(reg, n) for reg, n in ref._names if not (reg is self and n == name)]

    def _forget(self, name: str, ref: ActorRef) -> None:
        if self._names.get(name) is ref:
            del self._names[name]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __contains__(self, name: object) -> bool:
        return name in self._names
