"""A tiny round-robin HTTP/1.1 proxy on loopback: the load balancer of the cluster tests and benchmark.

It balances **per request**, not per connection: an HTTP client keeps one keep-alive connection to the
proxy, and each request on it goes to the next node in turn, as an ordinary round-robin balancer with
no sticky routing does. So one MCP session's requests land on every node.

What it does on a node failure is what a real balancer does (nginx's ``proxy_next_upstream error``):

- the node refuses the connection (it is dead): nothing was sent, so the request goes to the next node,
  and the dead one is skipped for ``down_for`` seconds;
- the node's connection breaks after the request was sent and before the response head came back: the
  request may have run, so it is **not** retried here; the client gets ``502 Bad Gateway`` and decides;
- the node's connection breaks while the response body streams (an SSE stream): the client's
  connection is closed without the body's end, exactly as the node's own close would look.

Bodies stream through both ways as they arrive (SSE events are not buffered). Request bodies are read
whole first (MCP request bodies are small; capped at ``max_body``). Each proxied request opens its own
upstream connection with ``connection: close``, as nginx does by default.

Run in-process (``open_proxy``, an async context manager) or as its own process::

    python tests/_cluster_proxy.py 127.0.0.1:8001 127.0.0.1:8002   # prints "proxy listening on PORT"
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import h11
import trio

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_READ = 65536


class _UpstreamLost(Exception):
    """The node's connection failed after the request was sent."""


@attrs.define
class ProxyStats:
    """What the proxy saw, per node (``host:port``), for the tests' reports."""

    requests: dict[str, int] = attrs.field(factory=dict)
    refused: dict[str, int] = attrs.field(factory=dict)
    bad_gateway: int = 0
    cut_streams: int = 0  # the node broke off a response body (it died mid-stream)
    client_hangups: int = 0  # the client closed while a body streamed (the SDK ends SSE bodies so)
    # The node each session's latest GET (its standalone stream) went to, by Mcp-Session-Id: the tests
    # use it to tell a notification raised on another node from one raised where the stream is.
    get_streams: dict[str, str] = attrs.field(factory=dict)
    posts_in_flight: dict[str, int] = attrs.field(factory=dict)  # POSTs sent to a node, not yet answered
    cut_posts: int = 0  # POSTs whose node failed after they were sent (a 502, or their stream cut)

    def count(self, table: dict[str, int], node: str) -> None:
        table[node] = table.get(node, 0) + 1


@attrs.define
class RoundRobinProxy:
    """Round-robin over ``backends`` (``(host, port)`` pairs); ``serve`` runs it on a listener."""

    backends: list[tuple[str, int]]
    down_for: float = 2.0
    max_body: int = 4 * 1024 * 1024
    connect_timeout: float = 2.0
    stats: ProxyStats = attrs.field(factory=ProxyStats)
    _turn: itertools.count[int] = attrs.field(factory=itertools.count)
    _down_until: dict[tuple[str, int], float] = attrs.field(factory=dict)

    def _order(self) -> list[tuple[str, int]]:
        """The nodes to try for the next request: the next in turn first, the ones marked down last."""
        start = next(self._turn) % len(self.backends)
        ring = self.backends[start:] + self.backends[:start]
        now = trio.current_time()
        up = [b for b in ring if self._down_until.get(b, 0.0) <= now]
        return up + [b for b in ring if b not in up]

    async def _connect(self) -> tuple[trio.SocketStream, str] | None:
        for host, port in self._order():
            name = f"{host}:{port}"
            try:
                with trio.fail_after(self.connect_timeout):
                    stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError):
                self.stats.count(self.stats.refused, name)
                self._down_until[(host, port)] = trio.current_time() + self.down_for
                continue
            self._down_until.pop((host, port), None)
            self.stats.count(self.stats.requests, name)
            return stream, name
        return None

    async def serve(
        self, port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on 127.0.0.1:``port`` (0: a free one) and report the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        bound: int = listeners[0].socket.getsockname()[1]
        task_status.started(bound)
        await trio.serve_listeners(self._client, listeners)

    async def _client(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            async with stream:
                while await self._one_request(conn, stream):
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return  # the client went away, or spoke broken HTTP: drop the connection

    async def _next_event(self, conn: h11.Connection, stream: trio.SocketStream) -> object:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(_READ))
                continue
            return event

    async def _one_request(self, conn: h11.Connection, client: trio.SocketStream) -> bool:
        """Proxy one request; False when the client connection is done."""
        event = await self._next_event(conn, client)
        if not isinstance(event, h11.Request):
            return False
        body = bytearray()
        while True:
            part = await self._next_event(conn, client)
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > self.max_body:
                    await self._answer(conn, client, 413, b"request body too large for the test proxy\n")
                    return False
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False
        upstream = await self._connect()
        if upstream is None:
            await self._answer(conn, client, 502, b"no node accepted the connection\n")
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE
        node, name = upstream
        if event.method == b"GET":
            session = dict(event.headers).get(b"mcp-session-id")
            if session is not None:
                self.stats.get_streams[session.decode("latin-1")] = name
        post = event.method == b"POST"
        if post:
            self.stats.count(self.stats.posts_in_flight, name)
        try:
            async with node:
                try:
                    head, up = await self._send_upstream(node, event, bytes(body))
                except _UpstreamLost:
                    self.stats.bad_gateway += 1
                    self.stats.cut_posts += post
                    await self._answer(conn, client, 502, f"node {name} failed before answering\n".encode())
                    return conn.our_state is h11.DONE and conn.their_state is h11.DONE
                headers = [(k, v) for k, v in head.headers if k.lower() not in _HOP_BY_HOP]
                await client.send_all(conn.send(h11.Response(status_code=head.status_code, headers=headers)))
                outcome = await self._stream_body(conn, client, node, up)
                if outcome != "complete":
                    self.stats.cut_posts += post and outcome == "node"
                    return False
        finally:
            if post:
                self.stats.posts_in_flight[name] -= 1
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _send_upstream(
        self, node: trio.SocketStream, request: h11.Request, body: bytes
    ) -> tuple[h11.Response, h11.Connection]:
        up = h11.Connection(h11.CLIENT)
        headers = [
            (k, v)
            for k, v in request.headers
            if k.lower() not in _HOP_BY_HOP and k.lower() != b"content-length"
        ]
        headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        try:
            await node.send_all(
                up.send(h11.Request(method=request.method, target=request.target, headers=headers))
                + up.send(h11.Data(data=body))
                + up.send(h11.EndOfMessage())
            )
            while True:
                event = up.next_event()
                if event is h11.NEED_DATA:
                    up.receive_data(await node.receive_some(_READ))
                    continue
                if isinstance(event, h11.Response):
                    return event, up
                if isinstance(event, h11.InformationalResponse):
                    continue
                raise _UpstreamLost(repr(event))
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError) as exc:
            raise _UpstreamLost(str(exc)) from exc

    async def _stream_body(
        self, conn: h11.Connection, client: trio.SocketStream, node: trio.SocketStream, up: h11.Connection
    ) -> str:
        """Pass the node's body to the client as it comes: "complete", or who broke off, "node" or
        "client"."""
        outcome = "client"

        async def pump(cancel: trio.CancelScope) -> None:
            nonlocal outcome
            while True:
                try:
                    event = up.next_event()
                    if event is h11.NEED_DATA:
                        up.receive_data(await node.receive_some(_READ))
                        continue
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
                    event = None  # the node's connection broke (reset, or closed before the body's end)
                if not isinstance(event, h11.Data | h11.EndOfMessage):
                    outcome = "node"
                    self.stats.cut_streams += 1
                    break
                try:
                    if isinstance(event, h11.Data):
                        await client.send_all(conn.send(h11.Data(data=event.data)))
                        continue
                    await client.send_all(conn.send(h11.EndOfMessage()))
                    outcome = "complete"
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client went away (outcome stays "client")
                break
            cancel.cancel()

        async def watch_client(cancel: trio.CancelScope) -> None:
            # A client that hangs up mid-stream (the SDK closes an SSE body once it has its answer)
            # must free the node's connection too. Bytes of a pipelined next request are kept for h11.
            try:
                while True:
                    data = await client.receive_some(_READ)
                    if not data:
                        break
                    conn.receive_data(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            self.stats.client_hangups += 1
            cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, nursery.cancel_scope)
            nursery.start_soon(watch_client, nursery.cancel_scope)
        return outcome

    async def _answer(
        self, conn: h11.Connection, client: trio.SocketStream, status: int, text: bytes
    ) -> None:
        if conn.our_state is not h11.SEND_RESPONSE:
            return
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
        await client.send_all(
            conn.send(h11.Response(status_code=status, headers=headers))
            + conn.send(h11.Data(data=text))
            + conn.send(h11.EndOfMessage())
        )


@asynccontextmanager
async def open_proxy(
    backends: Sequence[tuple[str, int]], *, down_for: float = 2.0
) -> AsyncIterator[tuple[RoundRobinProxy, str]]:
    """Serve a proxy in the current trio run; yields it and its MCP URL (``http://127.0.0.1:P/mcp``)."""
    proxy = RoundRobinProxy(list(backends), down_for=down_for)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.serve)
        yield proxy, f"http://127.0.0.1:{port}/mcp"
        nursery.cancel_scope.cancel()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected 127.0.0.1:PORT (loopback only), got {text!r}")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="round-robin HTTP proxy for the cluster tests")
    parser.add_argument("backends", nargs="+", type=_address)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    proxy = RoundRobinProxy(list(args.backends))

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(proxy.serve, args.port)
            print(f"proxy listening on {port}", flush=True)

    trio.run(run)


if __name__ == "__main__":
    sys.exit(main())
