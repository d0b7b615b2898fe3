"""The single error out of a nursery: what to raise bare when a strict nursery wrapped one exception.

trio's strict nurseries put every error in an ``ExceptionGroup``. A context manager that opened a
nursery the user never sees (a supervisor, an in-memory client, the ``serve`` loop) raises the lone
error bare instead, so ``except ValueError`` in the caller works as if there were no nursery.
"""

from __future__ import annotations


def lone_error(group: BaseExceptionGroup[BaseException], *, nested: bool = False) -> BaseException | None:
    """The one exception ``group`` carries, or None when it carries several.

    With ``nested``, a lone exception that is itself a group of one is unwrapped too (through every
    nursery it crossed); without, it is returned as it is (a user's own group stays a group).
    """
    if len(group.exceptions) != 1:
        return None
    lone = group.exceptions[0]
    while nested and isinstance(lone, BaseExceptionGroup) and len(lone.exceptions) == 1:
        lone = lone.exceptions[0]
    return lone
