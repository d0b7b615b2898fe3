"""Calling a user's handler: sync or async, with its `Context`, and what its exceptions become.

One place decides the failure policy for tools, resources, prompts and completions alike:
``JsonRpcError`` keeps its code; ``ToolError`` is left to the caller (only tools have an error result);
``CrashSession`` and every ``BaseException`` (``trio.Cancelled``, ``KeyboardInterrupt``) propagate
untouched so the session actor and trio see them; anything else is logged with its traceback and
answered -32603 "Internal error", so a handler's internals never reach the client.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import trio

from ..protocol import INTERNAL_ERROR, JsonRpcError
from ..protocol._schema import hint_is
from ._context import Context
from ._env import NoSessionState
from ._errors import CrashSession, ToolError
from ._input_rounds import InputRequired, NeedsInput
from ._state_errors import StateStoreUnavailable

logger: Final = logging.getLogger("mcpvisor.runtime.server")


def is_context_hint(hint: Any) -> bool:
    """``Context``, ``Context | None`` or ``Annotated[Context, ...]``."""
    return hint_is(hint, (Context,))


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an instance with an async __call__
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


@attrs.frozen
class Handler:
    """A user function plus what dispatch needs to call it."""

    fn: Callable[..., Any]
    label: str
    is_async: bool
    #: Parameters that receive the request's Context.
    context_params: tuple[str, ...]
    hints: Mapping[str, Any]
    parameters: Mapping[str, inspect.Parameter]
    #: A sync handler called on the event loop itself, not in a worker thread (``inline=True``).
    inline: bool = False

    @classmethod
    def wrap(cls, fn: Callable[..., Any], label: str, *, inline: bool = False) -> Handler:
        """Inspect ``fn`` once, at registration; a sync handler asking for a Context is a TypeError,
        and so is ``inline`` on an async one (it already runs on the event loop)."""
        if not callable(fn):
            raise TypeError(f"{label}: expected a function, got {fn!r}")
        hints = typing.get_type_hints(fn, include_extras=True)
        parameters = dict(inspect.signature(fn).parameters)
        context_params = tuple(name for name in parameters if is_context_hint(hints.get(name)))
        is_async = _is_async(fn)
        if context_params and not is_async:
            raise TypeError(
                f"{label}: {getattr(fn, '__qualname__', fn)!r} declares a Context parameter "
                f"({context_params[0]!r}) but is not async; Context methods are async, so make the "
                "handler `async def`"
            )
        if inline and is_async:
            raise TypeError(f"{label}: inline=True is for sync functions; an async one already runs inline")
        return cls(fn, label, is_async, context_params, hints, parameters, inline)

    @property
    def return_hint(self) -> Any:
        return self.hints.get("return", inspect.Signature.empty)

    def user_parameters(self) -> list[inspect.Parameter]:
        """Parameters filled from the request (everything but the Context ones)."""
        return [p for name, p in self.parameters.items() if name not in self.context_params]

    async def call(self, kwargs: Mapping[str, Any], ctx: Context) -> Any:
        arguments = dict(kwargs)
        for name in self.context_params:
            arguments[name] = ctx
        if self.is_async:
            return await self.fn(**arguments)
        if self.inline:
            # The author promised it never blocks: a worker-thread hop costs more than such a call.
            result = self.fn(**arguments)
            return (await result) if inspect.iscoroutine(result) else result
        # Sync code blocks; a worker thread keeps the session's other requests moving. A thread cannot
        # be interrupted, so on cancellation we stop waiting for it (its result is dropped) rather than
        # let one stuck function hold up notifications/cancelled or a supervisor's shutdown.
        # Boxed: trio refuses a thread result that is a coroutine, and a plain callable may return one
        # (a lambda around an async function); it is awaited here, in trio.
        (result,) = await trio.to_thread.run_sync(
            _boxed, self.fn, arguments, abandon_on_cancel=True, limiter=_thread_limiter()
        )
        if inspect.iscoroutine(result):
            result = await result
        return result


class _NoCheckpointLimiter:
    """trio's default thread limiter (the same shared cap, configured the same way), taken without
    the extra checkpoint ``CapacityLimiter.acquire_on_behalf_of`` makes when a thread is free.

    ``to_thread.run_sync`` already checks for cancellation on entry and waits for the thread at a real
    schedule point, so that checkpoint only costs a trip through the scheduler per sync call (about 35k
    instructions of ~265k for the hop, measured with callgrind). trio takes any object with these two
    methods as ``limiter``; when no thread is free, the wait is the limiter's own, cancellable as before.
    """

    __slots__ = ("inner",)

    def __init__(self, inner: trio.CapacityLimiter) -> None:
        self.inner = inner

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        try:
            self.inner.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            await self.inner.acquire_on_behalf_of(borrower)

    def release_on_behalf_of(self, borrower: object) -> None:
        self.inner.release_on_behalf_of(borrower)


_limiter: _NoCheckpointLimiter | None = None


def _thread_limiter() -> Any:
    """The wrapper of this run's default limiter (one per ``trio.run``: re-made when it changes)."""
    global _limiter
    inner = trio.to_thread.current_default_thread_limiter()
    if _limiter is None or _limiter.inner is not inner:
        _limiter = _NoCheckpointLimiter(inner)
    return _limiter


def _boxed(fn: Callable[..., Any], arguments: dict[str, Any]) -> tuple[Any]:
    return (fn(**arguments),)


async def invoke(
    handler: Handler, kwargs: Mapping[str, Any], ctx: Context, convert: Callable[[Any], Any]
) -> Any:
    """Run ``handler`` and ``convert`` its value under the failure policy of the module docstring.

    ``ToolError`` propagates for the caller to decide (tools turn it into ``isError``). An
    ``InputRequired`` answer is returned as is (not converted), and ``NeedsInput`` propagates: both end
    a round of a multi round-trip request, which dispatch handles.
    """
    try:
        value = await handler.call(kwargs, ctx)
        return value if isinstance(value, InputRequired) else convert(value)
    except (JsonRpcError, ToolError, CrashSession, NeedsInput):
        raise
    except NoSessionState as exc:
        # The server author's mistake, not the client's or the model's: say so plainly.
        logger.warning("%s used session state on a stateless request", handler.label)
        raise JsonRpcError(INTERNAL_ERROR, str(exc)) from exc
    except StateStoreUnavailable as exc:
        # The client must learn whether its write landed ("not applied" / "outcome unknown") to
        # decide whether to send the request again; the text names keys and timings, never values.
        logger.warning("%s: %s", handler.label, exc)
        raise JsonRpcError(INTERNAL_ERROR, str(exc)) from exc
    except Exception as exc:
        if isinstance(exc, ExceptionGroup):
            # From a handler's own nursery: a crash request wins, then a round that needs input
            # (``ctx.elicit`` in a child task of a 2026-07-28 request).
            for wanted in (CrashSession, NeedsInput):
                found: BaseException | None = exc.subgroup(wanted)
                while isinstance(found, BaseExceptionGroup):
                    found = found.exceptions[0]
                if found is not None:
                    raise found from exc
        logger.exception("%s raised", handler.label)
        raise JsonRpcError(INTERNAL_ERROR, "Internal error") from exc
