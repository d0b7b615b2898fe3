"""``ListenError``: the HTTP server could not listen where it was asked to, in one sentence.

A busy port used to surface as a 91-line ``ExceptionGroup`` traceback from deep inside trio's
``open_tcp_listeners``; what the user needs is the address, the cause, and what to do about it.
"""

from __future__ import annotations

import errno
import os
import socket

import trio

#: What to say for the usual causes, by errno.
_CAUSES = {
    errno.EADDRINUSE: (
        "address already in use (another process listens there: stop it or choose another port)"
    ),
    errno.EACCES: "permission denied (ports below 1024 need privileges: choose a port of 1024 or more)",
    errno.EADDRNOTAVAIL: (
        "the address is not one of this machine's (bind to 127.0.0.1, 0.0.0.0 or a local interface's address)"
    ),
}


class ListenError(OSError):
    """The server could not listen on ``host:port``; ``str()`` is one line that says why.

    An ``OSError`` (with the original ``errno``), so code that caught the bare bind error still does.
    """

    @classmethod
    def from_os_error(cls, host: str, port: int, error: OSError) -> ListenError:
        shown = f"[{host}]" if ":" in host else host
        if isinstance(error, socket.gaierror):
            cause = f"cannot resolve the host ({error.strerror or error})"
        else:
            cause = _CAUSES.get(error.errno or 0) or (os.strerror(error.errno) if error.errno else str(error))
        made = cls(error.errno, f"cannot listen on {shown}:{port}: {cause}")
        made.__cause__ = error
        return made

    def __str__(self) -> str:
        return str(self.strerror)


def single_os_error(error: BaseException) -> OSError | None:
    """The one ``OSError`` that ``error`` is, or that nested groups of one exception each carry."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, OSError) else None


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listening sockets on ``host:port`` (``port=0``: a free one), or a ``ListenError``.

    Opened apart from the server so a caller can bind first and fail before starting anything else
    (``mcpvisor run`` binds before it starts the supervision tree).
    """
    bare = host.strip("[]")
    try:
        return await trio.open_tcp_listeners(port, host=bare)
    except OSError as exc:
        raise ListenError.from_os_error(bare, port, exc) from exc
