"""Exit reasons shared by supervisors and actors.

OTP distinguishes ``normal``, ``shutdown`` and anything else (a crash). We keep exactly that: two
singletons and, for a crash, the exception object itself, so a reason can be raised, logged or matched.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias


class _Reason(enum.Enum):
    NORMAL = "normal"
    SHUTDOWN = "shutdown"

    def __repr__(self) -> str:
        return self.value


NORMAL: Final = _Reason.NORMAL
SHUTDOWN: Final = _Reason.SHUTDOWN

#: ``NORMAL``, ``SHUTDOWN`` or the exception a crashed task raised.
ExitReason: TypeAlias = _Reason | BaseException


def is_abnormal(reason: ExitReason) -> bool:
    """True for a crash: the exits that restart a TRANSIENT child and that links propagate.

    A supervisor that gave up (``RestartIntensityExceeded``) is not a crash: OTP's supervisor exits with
    ``shutdown`` then, so its parent does not restart it when it is TRANSIENT and counts it towards
    ``auto_shutdown`` when it is significant. We keep the exception as the reason so its cause stays
    visible, and classify it here as OTP does.
    """
    return isinstance(reason, BaseException) and not getattr(reason, "_otp_shutdown", False)
