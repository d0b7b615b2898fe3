"""The ``mcpvisor`` command: ``mcpvisor run app.py:server`` and ``mcpvisor demo``.

Bad usage (a target that does not load, a missing attribute, not a ``Server``) prints one clear line
and exits with status 2, as argparse does for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._cli_auth import AuthFlagError, auth_flags, auth_settings_of

DEFAULT_ATTRIBUTE = "server"

_DEMO_HINT = {
    "http": (
        "mcpvisor demo: tools counter, slow, crash and long_job (a background task). Connect an MCP client\n"
        "to the URL printed below, e.g.\n"
        "  npx @modelcontextprotocol/inspector   (transport: Streamable HTTP)\n"
        "then call counter twice, crash, and counter again: the session restarts and the count survives.\n"
        "A 2026-07-28 client has no session: counter returns a state handle; pass it back as `handle`."
    ),
    "stdio": "mcpvisor demo: tools counter, slow, crash and long_job, over stdio (logs on stderr).",
}


class TargetError(Exception):
    """The ``path:attr`` / ``module:attr`` target could not be loaded."""


def load_target(target: str) -> Any:
    """The ``Server`` named by ``path/to/app.py:attr`` or ``package.module:attr`` (attr defaults to
    ``server``)."""
    from mcpvisor.runtime.server import Server

    location, sep, attribute = target.rpartition(":")
    if not sep or (len(location) == 1 and location.isalpha()):  # no colon, or a Windows drive letter
        location, attribute = target, DEFAULT_ATTRIBUTE
    if not location or not attribute:
        raise TargetError(f"bad target {target!r}: expected path/to/app.py:server or package.module:server")
    if location.endswith(".py") or "/" in location or "\\" in location:
        path = Path(location)
        if not path.is_file():
            raise TargetError(f"bad target {target!r}: no such file {str(path)!r}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"bad target {target!r}: cannot load {str(path)!r} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise TargetError(f"bad target {target!r}: importing {str(path)!r} failed: {exc!r}") from exc
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise TargetError(f"bad target {target!r}: cannot import module {location!r} ({exc})") from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise TargetError(f"bad target {target!r}: {location!r} has no attribute {attribute!r}") from None
    if not isinstance(value, Server):
        raise TargetError(
            f"bad target {target!r}: {attribute!r} is a {type(value).__name__}, not an mcpvisor Server"
        )
    return value


# ---- limits: one block of flags, mapped onto start_server's options (docs/server.md "Limits") --------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _cap(text: str) -> int:
    return 0 if text.strip() == "0" else _count(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def limit_flags(sub: argparse.ArgumentParser) -> None:
    """The server's bounds as flags; ``limit_options`` turns the parsed values into options."""
    group = sub.add_argument_group("limits (docs/server.md, Limits)")
    group.add_argument(
        "--max-sessions",
        type=_cap,
        default=10_000,
        help="live sessions at once; beyond it initialize gets HTTP 503 (default 10000; 0: no cap)",
    )
    group.add_argument(
        "--session-idle-timeout",
        type=_seconds,
        default=1800.0,
        help="seconds a session may stay idle before it is closed (default 1800)",
    )
    group.add_argument(
        "--session-restart-intensity",
        type=_count,
        default=3,
        help="a session crashing more than this many times within the period is closed (default 3)",
    )
    group.add_argument(
        "--session-restart-period", type=_seconds, default=5.0, help="that period in seconds (default 5)"
    )
    group.add_argument(
        "--max-requests-per-session",
        type=_count,
        default=128,
        help="requests of one session running at once; more wait for a turn (default 128)",
    )
    group.add_argument(
        "--max-queued-requests-per-session",
        type=_count,
        default=1024,
        help="requests of one session waiting for a turn; beyond it HTTP 429 + Retry-After (default 1024)",
    )
    group.add_argument(
        "--max-stateless-requests",
        type=_count,
        default=1024,
        help="2026-07-28 requests running at once, server-wide; beyond it HTTP 429 (default 1024)",
    )


def limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """``start_server`` options from the flags of ``limit_flags``."""
    return {
        "max_sessions": args.max_sessions or None,
        "session_idle_timeout": args.session_idle_timeout,
        "session_restart_intensity": args.session_restart_intensity,
        "session_restart_period": args.session_restart_period,
        "max_requests_per_session": args.max_requests_per_session,
        "max_queued_requests_per_session": args.max_queued_requests_per_session,
        "max_stateless_requests": args.max_stateless_requests,
    }


def http_limit_options(sub: argparse.ArgumentParser) -> None:
    """The HTTP server's connection limits (docs/http.md, "Connection limits"); unset ones keep serve_http's
    defaults."""
    limits = sub.add_argument_group("HTTP connection limits (docs/http.md, Connection limits)")
    limits.add_argument(
        "--max-connections",
        type=_count,
        help="connections held at once (default: the file descriptor limit less 128, at most 10000; "
        "h11 only); over it the longest-waiting connection is closed, else the new one gets 503",
    )
    limits.add_argument(
        "--body-timeout",
        type=_seconds,
        help="seconds a request body may take to arrive (default 30); then 408",
    )
    limits.add_argument(
        "--keep-alive",
        type=_seconds,
        help="seconds an idle connection, or a request head on its way, is kept (default 5)",
    )
    limits.add_argument(
        "--max-header-bytes",
        type=_count,
        help="longest request head in bytes (default 65536); longer is 431",
    )
    checks = sub.add_argument_group("DNS-rebinding checks (docs/http.md)")
    checks.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="HOST",
        help="a Host header to accept (repeat for more; '*' for any). Default: the loopback names; bound "
        "to a non-loopback --host, any (with a warning) unless given",
    )
    checks.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="a browser Origin to accept, e.g. https://app.example.com (repeat for more; '*' for any). "
        "Default: http(s) on the loopback names",
    )


def http_limits_of(args: argparse.Namespace) -> dict[str, Any]:
    """The HTTP options given on the command line (limits and checks), as ``serve_http`` keywords."""
    names = (
        "max_connections",
        "body_timeout",
        "keep_alive",
        "max_header_bytes",
        "allowed_hosts",
        "allowed_origins",
        "http_parser",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def node_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--node-id`` names the node and its task markers (so two nodes never fail each other's tasks)."""
    options: dict[str, Any] = {"node_ttl": args.node_ttl}
    if args.node_id is not None:
        options.update(node_id=args.node_id, task_node=args.node_id)
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcpvisor", description="Run MCP servers under OTP-style supervision."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def transport_options(sub: argparse.ArgumentParser, default: str) -> None:
        sub.add_argument("--transport", choices=("stdio", "http"), default=default)
        sub.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
        sub.add_argument(
            "--port", type=int, default=8000, help="HTTP port (default 8000; 0 picks a free one)"
        )
        sub.add_argument(
            "--state-store", default="memory://", help="memory:// | sqlite:///file.db | redis://host:port/0"
        )
        sub.add_argument(
            "--task-backend", default="memory://", help="memory:// | sqlite:///file.db | redis://..."
        )
        sub.add_argument(
            "--http-server",
            choices=("h11", "hypercorn"),
            default="h11",
            help="HTTP server: h11 (built in, the fastest here) or hypercorn (HTTP/2, TLS options)",
        )
        sub.add_argument(
            "--http-parser",
            choices=("httptools", "h11"),
            default=None,
            help="request parser of the built-in HTTP server: httptools (in C, the default) or h11 "
            "(pure Python); the same limits and answers on both (docs/http.md, 'Request parser')",
        )
        sub.add_argument(
            "--node-id",
            default=None,
            help="this process's name in logs, on the cluster bus and in its running-task markers; "
            "give each process on one shared Redis or SQLite its own stable name (default: random, "
            "with task markers named 'default')",
        )
        sub.add_argument(
            "--node-ttl",
            type=float,
            default=10.0,
            help="with a Redis backend: seconds without renewing its leases after which a node counts as "
            "dead: survivors take its sessions over, answer its in-flight requests with a retryable "
            "error and fail its unfinished tasks (default 10)",
        )
        limit_flags(sub)
        http_limit_options(sub)
        auth_flags(sub)
        sub.add_argument(
            "--protocol",
            choices=("all", "2025-11-25", "2026-07-28"),
            default="all",
            help="serve both protocol eras (default), or only 2025-11-25 (sessions, the initialize "
            "handshake) or only 2026-07-28 (stateless; state through handles)",
        )

    run = commands.add_parser("run", help="serve a Server: mcpvisor run app.py:server")
    run.add_argument("target", help="path/to/app.py:attr or package.module:attr (attr defaults to 'server')")
    transport_options(run, "stdio")
    demo = commands.add_parser("demo", help="serve the demo server (counter, slow, crash tools)")
    transport_options(demo, "http")
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.node_ttl > 0:
        parser.error(f"--node-ttl must be positive, got {args.node_ttl}")
    if args.http_server == "hypercorn" and args.max_connections is not None:
        parser.error("--max-connections: hypercorn has no connection cap (use --http-server h11)")
    if args.http_server == "hypercorn" and args.http_parser is not None:
        parser.error("--http-parser: hypercorn parses with h11 itself (use --http-server h11)")
    try:
        auth = auth_settings_of(args, args.transport)
    except AuthFlagError as exc:
        parser.error(str(exc))
    http_options = http_limits_of(args)
    if auth is not None:
        http_options["auth"] = auth
    if args.command == "demo":
        from mcpvisor.runtime.server.demo import server

        print(_DEMO_HINT[args.transport], file=sys.stderr, flush=True)
    else:
        try:
            server = load_target(args.target)
        except TargetError as exc:
            parser.exit(2, f"mcpvisor: error: {exc}\n")
    from mcpvisor.backends import BackendUnavailable, UnsupportedBackendURL
    from mcpvisor.runtime.transports._run import run_server
    from mcpvisor.runtime.transports.http import ListenError

    try:
        run_server(
            server,
            transport=args.transport,
            host=args.host,
            port=args.port,
            session_state_store=args.state_store,
            task_backend=args.task_backend,
            http_server=args.http_server,
            **limit_options(args),
            http_options=http_options,
            protocol=args.protocol,
            **node_options(args),
        )
    except (UnsupportedBackendURL, BackendUnavailable, ListenError) as exc:
        parser.exit(2, f"mcpvisor: error: {exc}\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
