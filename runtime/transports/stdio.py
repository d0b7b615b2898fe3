"""The stdio transport: newline-delimited JSON-RPC on stdin/stdout, one session per process.

stdout carries protocol messages only (every log goes to stderr). Each request gets its own replies
channel and a pump task that forwards its messages to the single writer, so a slow request never holds
up another's answer. Both eras work: a handshake-era client sends ``initialize`` (which creates the
session), a 2026-07-28 client sends envelope requests that run stateless. End of input closes the
session (its requests are answered -32603, its values dropped) and returns.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator
from typing import Final

import trio

from ..protocol import (
    PARSE_ERROR,
    Malformed,
    allows_batches,
    encode,
    error_response,
    parse_payload,
)
from ..tree._port import ServerPort
from ._connection import Outgoing, SingleClientConnection

logger = logging.getLogger("mcpvisor.runtime.transports")

#: A line longer than this is answered with a parse error and skipped.
MAX_LINE: Final = 16 * 1024 * 1024


async def _lines(stream: trio.abc.ReceiveStream, max_line: int) -> AsyncIterator[bytes | None]:
    """Lines without their newline; None for a line that was too long (and was skipped)."""
    buffer = bytearray()
    skipping = False
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            if skipping:
                skipping = False
                yield None
            elif line.strip():
                yield line
            continue
        if len(buffer) > max_line:
            buffer.clear()
            skipping = True
        chunk = await stream.receive_some(1 << 16)
        if not chunk:
            if buffer.strip() and not skipping:
                yield bytes(buffer)
            return
        buffer += chunk


async def _write(out: trio.MemoryReceiveChannel[Outgoing], stdout: trio.abc.SendStream) -> None:
    async with out:
        async for message in out:
            data = encode(message) + b"\n"
            # Coalesce whatever else is ready into one write.
            while True:
                try:
                    data += encode(out.receive_nowait()) + b"\n"
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    break
                if len(data) > 1 << 20:
                    break
            await stdout.send_all(data)


async def serve_stdio(
    port: ServerPort,
    *,
    stdin: trio.abc.ReceiveStream | None = None,
    stdout: trio.abc.SendStream | None = None,
    max_line: int = MAX_LINE,
) -> None:
    """Serve one client on ``stdin``/``stdout`` (the process's own by default) until end of input."""
    own = stdin is None or stdout is None
    if stdin is None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
    if stdout is None:
        stdout = trio.lowlevel.FdStream(os.dup(1))
    out_send, out_receive = trio.open_memory_channel[Outgoing](math.inf)
    try:
        async with trio.open_nursery() as writer:
            writer.start_soon(_write, out_receive, stdout)
            async with out_send, trio.open_nursery() as nursery:
                conn = SingleClientConnection(port, out_send.clone(), nursery)
                async for line in _lines(stdin, max_line):
                    if line is None:
                        await out_send.send(
                            error_response(
                                None, PARSE_ERROR, f"Parse error: line longer than {max_line} bytes"
                            )
                        )
                        continue
                    incoming = parse_payload(line, allow_batch=allows_batches(conn.version))
                    if incoming.batch:
                        await conn.handle_batch(incoming.items)
                        continue
                    for item in incoming.items:
                        if isinstance(item, Malformed):
                            await out_send.send(item.reply)
                        else:
                            await conn.handle(item)
                logger.info("stdin closed: ending the session")
                await conn.finish()
                # the pumps end once every replies channel is closed (close_session answered them)
    finally:
        if own:
            with trio.CancelScope(shield=True):
                await stdin.aclose()
                await stdout.aclose()
