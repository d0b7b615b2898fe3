"""The kill test of issue 11: three nodes on one Redis behind a round-robin proxy, one SIGKILLed mid-traffic.

Three real server processes (``mcpvisor run tests/_cluster_app.py:server --transport http``, each with
``--state-store`` and ``--task-backend`` on one private ``redis-server``), a round-robin proxy in front
of them that balances every request (no sticky routing), and the official SDK client (``ClientSession``
over ``streamable_http_client``, the 2025-11-25 session era) with several sessions through it. So every
session's requests land on every node.

1. Before the kill, each session sets its log level, subscribes to its own ``note://`` resource,
   counts, appends tokens, and touches its resource from whatever node the proxy picks: the
   ``resources/updated`` must reach the client's GET stream, which is held by some other node.
2. Then every session runs writes concurrently (``append`` with a short pause, ``counter``), and one
   node is killed with SIGKILL while requests are in flight on it. A request that fails must fail with
   a retryable error (the connection closed, or the proxy's 502) within a bound; the client retries
   it. ``append`` is idempotent (a token is stored once), so a retry is safe; ``counter`` is not, so
   its retries are counted as ambiguous.
3. After the kill, every session goes on, on the survivors, with its values (every acknowledged token
   stored exactly once, the counter within [acknowledged, acknowledged + ambiguous]), its settings (the
   log level) and its subscription (``resources/updated`` raised on a survivor reaches it).

Every check is recorded and printed with the counts (sessions, requests, acknowledged writes, lost),
then the test asserts that all of them hold: one run shows every broken guarantee at once.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx2
import mcp_types
import pytest
import trio
from _cluster import Cluster, Node, start_cluster
from _cluster_proxy import RoundRobinProxy, open_proxy
from _redis_server import require_redis_server
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# The test drives the 2025-11-25 session era on purpose (log level and resources/subscribe are session
# settings there); the SDK warns that 2026-07-28 replaced them.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

NODES = 3
SESSIONS = 6
OPS_BEFORE_KILL = 4  # per session, before the kill may happen
OPS_AFTER_KILL = 8  # per session, sent after the kill
ATTEMPT_TIMEOUT = 8.0  # one call attempt longer than this counts as hung (a failure), then it is retried
MAX_ATTEMPTS = 6
NOTIFY_WAIT = 5.0  # seconds the resources/updated of a round of touches may take to arrive (all sessions)
LOG_WAIT = 2.0  # seconds the log messages of a round of chatty calls may take (all sessions)
VICTIM = 1  # index of the node that is killed
# A dead node is known as such once its leases expire: its in-flight requests fail retryably within
# about this long (the operator's choice, ``--node-ttl``; the default 10 s is longer than ATTEMPT_TIMEOUT).
NODE_TTL = 3.0
# Bounds: the nodes start within START_TIMEOUT, and everything after within TEST_TIMEOUT (the report
# is printed either way), so the test ends within a minute even when the cluster misbehaves.
START_TIMEOUT = 12.0
TEST_TIMEOUT = 45.0

# What the SDK client reports for a request whose answer was lost with its node: the response stream
# closed (CONNECTION_CLOSED) or the balancer's 502 (mapped by the SDK to this -32603 message).
_RETRYABLE_502 = "Server returned an error response"


def is_retryable(exc: MCPError) -> bool:
    """The SDK's own connection errors, the balancer's 502, or the server's error marked
    ``data.retryable`` (a forwarded request whose serving node died: docs/cluster.md)."""
    data = exc.data if isinstance(exc.data, dict) else {}
    return (
        exc.code == mcp_types.CONNECTION_CLOSED
        or (exc.code == mcp_types.INTERNAL_ERROR and exc.message == _RETRYABLE_502)
        or data.get("retryable") is True
    )


@attrs.define
class Totals:
    requests: int = 0
    retryable: int = 0
    hung: int = 0
    other_errors: list[str] = attrs.field(factory=list)
    acked_writes: int = 0
    lost: int | None = None  # acknowledged writes not stored; None until read back after the kill


@attrs.define
class Checks:
    """Named checks, each recorded with its detail, so one run reports every failed guarantee."""

    results: list[tuple[str, bool, str]] = attrs.field(factory=list)

    def check(self, name: str, ok: bool, detail: object = "") -> None:
        self.results.append((name, ok, str(detail)))

    def failed(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.results if not ok]

    def report(self) -> str:
        return "\n".join(
            f"  [{'ok' if ok else 'FAIL'}] {name} {detail if not ok else ''}"
            for name, ok, detail in self.results
        )


@attrs.define
class Client:
    """One SDK session through the proxy, with what it was told and what it was acknowledged."""

    name: str
    session: ClientSession
    totals: Totals
    updates: list[str] = attrs.field(factory=list)  # URIs of resources/updated received
    logs: list[str] = attrs.field(factory=list)  # levels of log messages received
    attempted_tokens: list[str] = attrs.field(factory=list)
    acked_tokens: list[str] = attrs.field(factory=list)
    counter_acked: int = 0
    counter_ambiguous: int = 0  # counter attempts that failed after being sent: they may have counted
    last_count: int = 0
    nodes_seen: set[str] = attrs.field(factory=set)
    nodes_after_kill: set[str] = attrs.field(factory=set)  # nodes that answered requests sent after it
    answered_after_kill: float | None = None
    session_id: str = ""
    touched_on: list[str] = attrs.field(factory=list)  # the node of each touch, in order
    news: trio.Event = attrs.field(factory=trio.Event)

    @property
    def uri(self) -> str:
        return f"note://{self.name}"

    async def call(self, tool: str, arguments: dict[str, Any], *, killed_at: list[float]) -> dict[str, Any]:
        """Call ``tool``, retrying a retryable failure; a hang counts (and is retried after the bound)."""
        for _ in range(MAX_ATTEMPTS):
            self.totals.requests += 1
            sent_after_kill = bool(killed_at)
            failed = False
            with trio.move_on_after(ATTEMPT_TIMEOUT) as attempt:
                try:
                    result = await self.session.call_tool(tool, arguments)
                except MCPError as exc:
                    if not is_retryable(exc):
                        self.totals.other_errors.append(f"{self.name} {tool}: {exc.code} {exc.message}")
                        raise
                    self.totals.retryable += 1
                    failed = True
            if attempt.cancelled_caught:
                self.totals.hung += 1
                failed = True
            if failed:
                if tool == "counter":
                    self.counter_ambiguous += 1
                await trio.sleep(0.1)
                continue
            if result.is_error:
                raise AssertionError(f"{self.name} {tool} answered a tool error: {result.content}")
            content: Any = result.structured_content
            answer: dict[str, Any] = content.get("result", content)
            self.nodes_seen.add(answer["node"])
            if sent_after_kill:
                self.nodes_after_kill.add(answer["node"])
            if sent_after_kill and self.answered_after_kill is None:
                self.answered_after_kill = time.monotonic() - killed_at[0]
            return answer
        raise AssertionError(f"{self.name} {tool}: no answer after {MAX_ATTEMPTS} attempts")

    async def append(self, token: str, pause: float, killed_at: list[float]) -> None:
        self.attempted_tokens.append(token)
        await self.call("append", {"token": token, "pause": pause}, killed_at=killed_at)
        self.acked_tokens.append(token)
        self.totals.acked_writes += 1

    async def count(self, killed_at: list[float]) -> int:
        answer = await self.call("counter", {}, killed_at=killed_at)
        self.counter_acked += 1
        self.totals.acked_writes += 1
        self.last_count = answer["count"]
        return self.last_count

    def heard(self) -> None:
        """A notification arrived: wake whoever waits for one."""
        self.news.set()
        self.news = trio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            await self.news.wait()


async def wait_all(clients: list[Client], done: Callable[[Client], bool], timeout: float) -> None:
    """Wait until ``done(client)`` holds for every client, or ``timeout`` (one deadline for all)."""
    with trio.move_on_after(timeout):
        for client in clients:
            await client.until(functools.partial(done, client))


@asynccontextmanager
async def open_client(name: str, url: str, http: httpx2.AsyncClient, totals: Totals) -> AsyncIterator[Client]:
    holder: list[Client] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, mcp_types.ResourceUpdatedNotification):
            holder[0].updates.append(str(message.params.uri))
            holder[0].heard()

    async def on_log(params: mcp_types.LoggingMessageNotificationParams) -> None:
        holder[0].logs.append(params.level)
        holder[0].heard()

    async with (
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, message_handler=on_message, logging_callback=on_log) as session,
    ):
        holder.append(Client(name, session, totals))
        await session.initialize()
        holder[0].session_id = (await holder[0].call("whoami", {}, killed_at=[]))["session"]
        yield holder[0]


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    require_redis_server("redis-server is not on PATH; the kill test needs it")
    with start_cluster(
        tmp_path / "cluster", nodes=NODES, start_timeout=START_TIMEOUT, extra=["--node-ttl", str(NODE_TTL)]
    ) as running:
        yield running


async def test_a_node_killed_mid_traffic_loses_nothing(cluster: Cluster) -> None:
    checks = Checks()
    totals = Totals()
    killed_at: list[float] = []
    victim = cluster.nodes[VICTIM]
    survivors = {n.name for n in cluster.nodes if n is not victim}
    rng = random.Random(11)
    cut_before: list[int] = []  # POSTs cut before the kill (by the proxy's count): must be none
    proxy: RoundRobinProxy | None = None
    clients: list[Client] = []
    try:
        with trio.fail_after(TEST_TIMEOUT):
            async with AsyncExitStack() as stack:
                proxy, url = await stack.enter_async_context(open_proxy(cluster.addresses))
                # One connection pool per session, as separate clients would have; no HTTP timeout
                # shorter than the test's own bounds.
                for i in range(SESSIONS):
                    http = await stack.enter_async_context(httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)))
                    clients.append(await stack.enter_async_context(open_client(f"s{i}", url, http, totals)))
                await _before_the_kill(clients, checks, killed_at, proxy, cluster.nodes)
                await _traffic_and_kill(clients, victim, killed_at, rng, proxy, cut_before)
                checks.check(
                    "the kill cut POSTs in flight on the victim (and nothing was cut before it)",
                    cut_before == [0] and proxy.stats.cut_posts > 0,
                    f"cut before the kill: {cut_before}, after: {proxy.stats.cut_posts}",
                )
                await _after_the_kill(clients, checks, killed_at, survivors)
    finally:
        _print_report(clients, totals, checks, proxy, killed_at)
    failed = checks.failed()
    assert not failed, "\n".join(failed) + "\n" + cluster.logs()


async def _before_the_kill(
    clients: list[Client], checks: Checks, killed_at: list[float], proxy: RoundRobinProxy, nodes: list[Node]
) -> None:
    for client in clients:
        await client.session.set_logging_level("warning")
        await client.session.subscribe_resource(client.uri)
    counts = [[await c.count(killed_at) for _ in range(3)] for c in clients]
    checks.check(
        "counters advance 1, 2, 3 on every session before the kill",
        all(x == [1, 2, 3] for x in counts),
        counts,
    )
    # Each session touches its resource three times: the proxy sends the touches to different nodes,
    # mostly not the one holding the session's GET stream.
    for client in clients:
        for _ in range(3):
            answer = await client.call("touch", {"uri": client.uri}, killed_at=killed_at)
            client.touched_on.append(answer["node"])
    await wait_all(clients, lambda c: c.updates.count(c.uri) >= 3, NOTIFY_WAIT)
    where = {f"{n.address[0]}:{n.address[1]}": n.name for n in nodes}
    stream_node = {c.name: where.get(proxy.stats.get_streams.get(c.session_id, ""), "?") for c in clients}
    crossing = sum(1 for c in clients for node in c.touched_on if node != stream_node[c.name])
    checks.check(
        "some touches ran on a node other than the one holding the session's GET stream",
        crossing > 0,
        {c.name: (stream_node[c.name], c.touched_on) for c in clients},
    )
    print(
        f"\n  before the kill: {crossing} of {3 * len(clients)} touches ran away from the GET stream's node"
    )
    got = {c.name: c.updates.count(c.uri) for c in clients}
    checks.check(
        "resources/updated raised on any node reaches the subscriber (3 each)",
        all(v == 3 for v in got.values()),
        got,
    )
    foreign = {c.name: [u for u in c.updates if u != c.uri] for c in clients}
    checks.check(
        "no session receives another session's resources/updated", not any(foreign.values()), foreign
    )
    for client in clients:
        await client.call("chatty", {}, killed_at=killed_at)
    await wait_all(clients, lambda c: len(c.logs) >= 2, LOG_WAIT)
    logs = {c.name: list(c.logs) for c in clients}
    checks.check(
        "the log level (warning) holds on every node",
        all(v == ["warning", "error"] for v in logs.values()),
        logs,
    )
    seen = set().union(*(c.nodes_seen for c in clients))
    checks.check(f"every node served requests before the kill ({NODES})", len(seen) == NODES, sorted(seen))


async def _traffic_and_kill(
    clients: list[Client],
    victim: Node,
    killed_at: list[float],
    rng: random.Random,
    proxy: RoundRobinProxy,
    cut_before: list[int],
) -> None:
    ready = trio.Event()
    done_before = [0]

    async def worker(client: Client, seed: int) -> None:
        local = random.Random(seed)
        k = 0
        after = 0
        while after < OPS_AFTER_KILL:
            sent_after = bool(killed_at)
            if k % 3 == 2:
                await client.count(killed_at)
            else:
                await client.append(f"{client.name}-{k}", local.uniform(0.05, 0.25), killed_at)
            k += 1
            if k == OPS_BEFORE_KILL:
                done_before[0] += 1
                if done_before[0] == len(clients):
                    ready.set()
            if sent_after:
                after += 1

    async def killer() -> None:
        await ready.wait()
        # Kill while POSTs are in flight on the victim (each append pauses 50-250 ms): bounded wait.
        victim_name = f"{victim.address[0]}:{victim.address[1]}"
        for _ in range(500):
            if proxy.stats.posts_in_flight.get(victim_name, 0) >= 2:
                break
            await trio.sleep(0.01)
        cut_before.append(proxy.stats.cut_posts)
        victim.kill()
        killed_at.append(time.monotonic())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(killer)
        for client in clients:
            nursery.start_soon(worker, client, rng.randrange(1 << 30))


async def _after_the_kill(
    clients: list[Client], checks: Checks, killed_at: list[float], survivors: set[str]
) -> None:
    stored: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for client in clients:
        answer = await client.call("tokens", {}, killed_at=killed_at)
        stored[client.name] = answer["tokens"]
        counts[client.name] = answer["count"]
    lost = {c.name: [t for t in c.acked_tokens if t not in stored[c.name]] for c in clients}
    twice = {c.name: sorted({t for t in stored[c.name] if stored[c.name].count(t) > 1}) for c in clients}
    unknown = {c.name: [t for t in stored[c.name] if t not in c.attempted_tokens] for c in clients}
    clients[0].totals.lost = sum(len(v) for v in lost.values())
    checks.check("no acknowledged write is lost", not any(lost.values()), lost)
    checks.check("no token is stored twice", not any(twice.values()), twice)
    checks.check("nothing is stored that was never sent", not any(unknown.values()), unknown)
    bounds = {
        c.name: (c.counter_acked, counts[c.name], c.counter_acked + c.counter_ambiguous) for c in clients
    }
    checks.check(
        "each counter is within [acknowledged, acknowledged + ambiguous]",
        all(lo <= n <= hi for lo, n, hi in bounds.values()),
        bounds,
    )
    for client in clients:
        before = client.last_count
        checks.check(
            f"{client.name}: counter advances after the kill", await client.count(killed_at) > before, before
        )
    # Settings: the log level, on survivors only.
    for client in clients:
        client.logs.clear()
        await client.call("chatty", {}, killed_at=killed_at)
    await wait_all(clients, lambda c: len(c.logs) >= 2, LOG_WAIT)
    logs = {c.name: list(c.logs) for c in clients}
    checks.check(
        "the log level holds after the kill", all(v == ["warning", "error"] for v in logs.values()), logs
    )
    # Subscriptions: touched from the survivors, heard on the client's (reconnected) GET stream.
    before_updates = {c.name: c.updates.count(c.uri) for c in clients}
    for client in clients:
        for _ in range(3):
            await client.call("touch", {"uri": client.uri}, killed_at=killed_at)
    await wait_all(clients, lambda c: c.updates.count(c.uri) >= before_updates[c.name] + 3, NOTIFY_WAIT)
    got = {c.name: c.updates.count(c.uri) - before_updates[c.name] for c in clients}
    checks.check(
        "the subscription holds after the kill (each of 3 updates heard exactly once)",
        all(v == 3 for v in got.values()),
        got,
    )
    totals = clients[0].totals
    checks.check(
        f"requests cut by the kill fail with a retryable error within {ATTEMPT_TIMEOUT} s (none hang)",
        totals.hung == 0,
        f"{totals.hung} attempts hung, {totals.retryable} failed retryably",
    )
    checks.check("no request fails with a non-retryable error", not totals.other_errors, totals.other_errors)
    after = set().union(*(c.nodes_after_kill for c in clients))
    checks.check(
        "after the kill, the survivors (and only they) answer",
        after == survivors,
        f"{sorted(after)} vs {survivors}",
    )
    answered = {c.name: c.answered_after_kill is not None for c in clients}
    checks.check("every session answered again after the kill", all(answered.values()), answered)


def _print_report(
    clients: list[Client],
    totals: Totals,
    checks: Checks,
    proxy: RoundRobinProxy | None,
    killed_at: list[float],
) -> None:
    back = sorted(c.answered_after_kill for c in clients if c.answered_after_kill is not None)
    print(
        f"\ncluster kill test: {NODES} nodes, {len(clients)} sessions, {totals.requests} requests, "
        f"{totals.acked_writes} acknowledged writes, {totals.retryable} retryable failures (retried), "
        f"{totals.hung} hung attempts, {len(totals.other_errors)} other errors, "
        f"lost: {'not read back' if totals.lost is None else totals.lost}"
    )
    if back:
        print(f"  kill -> each session answering again (s): {', '.join(f'{t:.2f}' for t in back)}")
    elif not killed_at:
        print("  no node was killed (the test stopped before)")
    if proxy is not None:
        stats = proxy.stats
        print(
            f"  proxy: requests per node {stats.requests}, refused {stats.refused}, "
            f"502s {stats.bad_gateway}, streams cut by a node {stats.cut_streams} ({stats.cut_posts} POSTs)"
        )
    for error in totals.other_errors:
        print(f"  other error: {error}")
    print(checks.report())
