"""A cluster on one machine: a private redis-server, N real server processes on it, a round-robin proxy.

Used by the kill test (tests/test_cluster_kill.py) and the cluster benchmark (benchmarks/cluster.py)::

    with start_cluster(tmp_path, nodes=3) as cluster:      # redis + 3 x `mcpvisor run ... --transport http`
        async with open_proxy(cluster.addresses) as (proxy, url):
            ...                                              # an MCP client on `url` reaches every node
        cluster.nodes[1].kill()                              # SIGKILL, by pid

Every node is ``python -m mcpvisor run TARGET --transport http --port 0`` on 127.0.0.1 with
``--state-store`` and ``--task-backend`` on the one Redis, its name as ``--node-id`` (so nodes never fail
each other's running tasks) and in ``MCPVISOR_TEST_NODE`` (the test app answers it), and its log
in a file of its own (a pipe nobody reads would fill and stall the node). Everything is started and
stopped by pid, every wait is bounded, and a failed start stops what was already started. The proxy is
in-process (``open_proxy``) or, for the benchmark, a process of its own (``start_proxy_process``).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
from _redis_server import RedisServer, redis_server_binary, start_redis_server

ROOT = Path(__file__).resolve().parent.parent
APP = f"{ROOT / 'tests' / '_cluster_app.py'}:server"
BANNER = "mcpvisor: serving"
START_TIMEOUT = 30.0  # seconds for every node to print its URL (several Python start-ups on 2 busy cores)
STOP_TIMEOUT = 10.0


class ClusterError(RuntimeError):
    """A part of the cluster did not start."""


@attrs.define
class Node:
    """One server process: its name, URL and log; ``kill`` and ``stop`` act on its pid only."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @property
    def address(self) -> tuple[str, int]:
        host_port = self.url.split("//", 1)[1].split("/", 1)[0]
        host, _, port = host_port.rpartition(":")
        return host, int(port)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer takes the process."""
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (an orderly stop), then SIGKILL if it is not gone within ``STOP_TIMEOUT``."""
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@attrs.define
class Cluster:
    redis_url: str
    nodes: list[Node]
    redis: RedisServer | None  # None: the caller's own Redis

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [node.address for node in self.nodes]

    def logs(self) -> str:
        """Every node's log tail, for an assertion message."""
        return "\n".join(
            f"--- {n.name} ({'alive' if n.alive else 'dead'}) ---\n{n.log_tail()}" for n in self.nodes
        )


def start_node(
    name: str, workdir: Path, redis_url: str, target: str = APP, extra: Sequence[str] = ()
) -> Node:
    """Start one node (without waiting for it: see ``wait_ready``)."""
    log_path = workdir / f"{name}.log"
    env = {**os.environ, "MCPVISOR_TEST_NODE": name, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcpvisor",
                "run",
                target,
                "--transport",
                "http",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--state-store",
                redis_url,
                "--task-backend",
                redis_url,
                "--node-id",
                name,
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
    return Node(name, process, log_path)


def wait_ready(nodes: Sequence[Node], timeout: float = START_TIMEOUT) -> None:
    """Wait (bounded) for each node's ``mcpvisor: serving ... at URL`` line and note its URL."""
    deadline = time.monotonic() + timeout
    for node in nodes:
        while not node.url:
            for line in node.log_tail(1_000_000).splitlines():
                if line.startswith(BANNER):
                    node.url = line.rsplit(" ", 1)[1].strip()
                    break
            else:
                if not node.alive:
                    raise ClusterError(
                        f"node {node.name} exited ({node.process.returncode}):\n{node.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"node {node.name} did not start within {timeout} s:\n{node.log_tail()}"
                    )
                time.sleep(0.05)


@contextmanager
def start_cluster(
    workdir: Path,
    *,
    nodes: int = 3,
    target: str = APP,
    extra: Sequence[str] = (),
    redis_url: str | None = None,
    names: str = "node",
    start_timeout: float = START_TIMEOUT,
) -> Iterator[Cluster]:
    """A private redis-server (unless ``redis_url`` names one the caller owns) and ``nodes`` processes.

    Nodes are named ``{names}1``, ``{names}2``, ...: clusters sharing one Redis need different ``names``
    (a node id in use by a live process is refused). Yields when every node serves; stops them all
    (and the Redis it started) on the way out, also when the start failed half-way.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    redis: RedisServer | None = None
    started: list[Node] = []
    try:
        if redis_url is None:
            binary = redis_server_binary()
            if binary is None:
                raise ClusterError("redis-server is not on PATH")
            redis = start_redis_server(binary, workdir)
            redis_url = redis.url
        for i in range(nodes):
            started.append(start_node(f"{names}{i + 1}", workdir, redis_url, target, extra))
        wait_ready(started, start_timeout)
        yield Cluster(redis_url, started, redis)
    finally:
        for node in started:
            if node.alive:
                node.process.terminate()
        for node in started:
            node.stop()
        if redis is not None:
            redis.stop()


@attrs.define
class ProxyProcess:
    """The round-robin proxy as its own process (the benchmark's: it then competes with the client
    for no interpreter lock)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_proxy_process(addresses: Sequence[tuple[str, int]], timeout: float = START_TIMEOUT) -> ProxyProcess:
    """``python tests/_cluster_proxy.py`` in front of ``addresses``; waits (bounded) for its port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "_cluster_proxy.py"), *(f"{h}:{p}" for h, p in addresses)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    proxy = ProxyProcess(process, "")
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffered = b""
    while time.monotonic() < deadline and b"\n" not in buffered:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the proxy exited
            buffered += chunk
    if b"\n" in buffered:
        port = int(buffered.split(b"\n", 1)[0].rsplit(b" ", 1)[1])
        proxy.url = f"http://127.0.0.1:{port}/mcp"
        return proxy
    proxy.stop()
    raise ClusterError("the proxy process did not start")
