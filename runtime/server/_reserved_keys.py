"""The state-key namespace the runtime keeps for itself (session settings, state-handle records).

Below both the authoring API (``StateHandle`` stores its record under it) and the runtime (the session
settings live under it), so neither has to import the other for one string.
"""

from __future__ import annotations

from typing import Final

#: Keys under this prefix belong to the runtime; handlers may not use them.
RESERVED_PREFIX: Final = "__mcpvisor__/"
