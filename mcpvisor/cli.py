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

DEFAULT_ATTRIBUTE = "server"

_DEMO_HINT = {
    "http": (
        "mcpvisor demo: tools counter, slow and crash. Connect an MCP client to the URL printed below, e.g.\n"
        "  npx @modelcontextprotocol/inspector   (transport: Streamable HTTP)\n"
        "then call counter twice, crash, and counter again: the session restarts and the count survives.\n"
        "A 2026-07-28 client has no session: counter returns a state handle; pass it back as `handle`."
    ),
    "stdio": "mcpvisor demo: tools counter, slow and crash, over stdio (logs on stderr).",
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
    if args.command == "demo":
        from mcpvisor.runtime.server.demo import server

        print(_DEMO_HINT[args.transport], file=sys.stderr, flush=True)
    else:
        try:
            server = load_target(args.target)
        except TargetError as exc:
            parser.exit(2, f"mcpvisor: error: {exc}\n")
    from mcpvisor.backends import UnsupportedBackendURL
    from mcpvisor.runtime.server._run import run_server

    try:
        run_server(
            server,
            transport=args.transport,
            host=args.host,
            port=args.port,
            session_state_store=args.state_store,
            task_backend=args.task_backend,
            http_server=args.http_server,
            protocol=args.protocol,
        )
    except UnsupportedBackendURL as exc:
        parser.exit(2, f"mcpvisor: error: {exc}\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
