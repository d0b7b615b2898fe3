"""The errors a handler sees when the session state store cannot do what it asked.

They belong to the authoring API (handlers catch them; ``Context`` documents them) while the
StateStoreServer actor that raises them belongs to the supervised runtime, so they live here, below both.
"""

from __future__ import annotations


class StateStoreUnavailable(RuntimeError):
    """The StateStoreServer is not running (it is being restarted, or the server is stopping)."""


class StateStoreTimeout(StateStoreUnavailable):
    """The operation did not start before its deadline. It was not applied and never will be."""


class StateStoreConflict(StateStoreUnavailable):
    """``update_state`` lost the race to other nodes too many times in a row: nothing was written."""


class StateStoreOutcomeUnknown(StateStoreUnavailable):
    """A write was running in the backend and did not finish in time: it may or may not be applied.

    Read the value back before acting on it (or make the write idempotent and send it again).
    """
