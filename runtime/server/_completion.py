"""Argument completion (`completion/complete`): suggestions for a prompt argument or a URI variable.

A completer is registered for one reference -- ``("ref/prompt", prompt_name)`` or
``("ref/resource", uri_template)`` -- and declares any of the parameters ``argument`` (the name being
completed), ``value`` (what the user typed so far) and ``arguments`` (values already chosen for the
other arguments), plus a ``Context`` if it wants one. It returns a list of strings or a `Completion`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._handler import Handler

CompletionRef: TypeAlias = Literal["ref/prompt", "ref/resource"]
COMPLETION_REFS: Final = ("ref/prompt", "ref/resource")
COMPLETER_PARAMETERS: Final = frozenset({"argument", "value", "arguments"})
#: The spec caps one answer at 100 values.
MAX_VALUES: Final = 100


def _strings(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class Completion:
    """Suggestions; ``total`` and ``has_more`` tell the client there are more than it was sent."""

    values: tuple[str, ...] = attrs.field(converter=_strings)
    total: int | None = None
    has_more: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        values = list(self.values)
        total, has_more = self.total, self.has_more
        if len(values) > MAX_VALUES:
            total = total if total is not None else len(values)
            values, has_more = values[:MAX_VALUES], True
        out: dict[str, Any] = {"values": values}
        if total is not None:
            out["total"] = total
        if has_more is not None:
            out["hasMore"] = has_more
        return out


@attrs.frozen
class RegisteredCompleter:
    ref: CompletionRef
    name: str
    handler: Handler


def make_completer(fn: Callable[..., Any], ref: str, name: str) -> RegisteredCompleter:
    if ref not in COMPLETION_REFS:
        raise ValueError(f"completion ref must be 'ref/prompt' or 'ref/resource', not {ref!r}")
    label = f"completion for {ref} {name!r}"
    handler = Handler.wrap(fn, label)
    unknown = [p.name for p in handler.user_parameters() if p.name not in COMPLETER_PARAMETERS]
    if unknown:
        raise TypeError(
            f"{label}: a completer may declare only 'argument', 'value', 'arguments' and a Context, "
            f"not {', '.join(map(repr, unknown))}"
        )
    kind: CompletionRef = "ref/prompt" if ref == "ref/prompt" else "ref/resource"
    return RegisteredCompleter(kind, name, handler)


def completion_of(value: Any) -> Completion:
    if isinstance(value, Completion):
        return value
    if value is None:
        return Completion(())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return Completion(value)
    raise TypeError(f"a completer returned {type(value).__qualname__}; return a list of str or Completion")
