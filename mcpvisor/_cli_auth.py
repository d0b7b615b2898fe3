"""The ``--auth-*`` options of ``mcpvisor run`` / ``mcpvisor demo`` (docs/auth.md), and the
``AuthSettings`` they make.

Either a JWKS URL (tokens are JWTs the server verifies itself) or an introspection URL (opaque
tokens, asked about at the authorization server). The introspection client secret is read from the
``MCPVISOR_AUTH_CLIENT_SECRET`` environment variable when not given: a secret on the command line is
visible to every user of the machine (``ps``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

SECRET_ENV = "MCPVISOR_AUTH_CLIENT_SECRET"


def auth_flags(sub: argparse.ArgumentParser) -> None:
    group = sub.add_argument_group("authorization: an OAuth resource server over HTTP (docs/auth.md)")
    group.add_argument(
        "--resource-url",
        metavar="URL",
        help="this server's canonical URL as clients reach it, e.g. https://mcp.example.com/mcp: the "
        "resource of the protected-resource metadata and the audience tokens must name. Turns auth on",
    )
    group.add_argument("--auth-issuer", metavar="URL", help="the authorization server (token issuer, iss)")
    group.add_argument(
        "--auth-audience",
        metavar="AUD",
        action="append",
        help="an audience tokens may name (repeat for more; default: --resource-url)",
    )
    group.add_argument("--auth-jwks-url", metavar="URL", help="verify JWTs against this JWKS")
    group.add_argument(
        "--auth-introspection-url", metavar="URL", help="verify tokens by RFC 7662 introspection here"
    )
    group.add_argument("--auth-client-id", metavar="ID", help="this server's client id for introspection")
    group.add_argument(
        "--auth-client-secret",
        metavar="SECRET",
        help=f"its client secret (better: the {SECRET_ENV} environment variable)",
    )
    group.add_argument(
        "--auth-required-scopes",
        metavar="SCOPES",
        help="scopes every request needs, space- or comma-separated (tools may need more)",
    )
    group.add_argument(
        "--auth-authorization-server",
        metavar="URL",
        action="append",
        help="an authorization server to advertise in the metadata (repeat; default: --auth-issuer)",
    )


_AUTH_FLAGS = (
    "auth_issuer",
    "auth_audience",
    "auth_jwks_url",
    "auth_introspection_url",
    "auth_client_id",
    "auth_client_secret",
    "auth_required_scopes",
    "auth_authorization_server",
)


class AuthFlagError(Exception):
    """The ``--auth-*`` options do not make a configuration; the message says what to change."""


def auth_settings_of(args: argparse.Namespace, transport: str) -> Any:
    """The ``AuthSettings`` the options ask for, None when no auth option was given."""
    given = [name for name in _AUTH_FLAGS if getattr(args, name, None)]
    resource = getattr(args, "resource_url", None)
    if resource is None and not given:
        return None
    if transport != "http":
        raise AuthFlagError(
            "--auth-* / --resource-url apply to --transport http only: over stdio the server takes its "
            "credentials from the environment (MCP authorization, docs/auth.md)"
        )
    if resource is None:
        raise AuthFlagError("--resource-url is required with --auth-*: the URL clients reach this server at")
    jwks, introspection = args.auth_jwks_url, args.auth_introspection_url
    if (jwks is None) == (introspection is None):
        raise AuthFlagError("give exactly one of --auth-jwks-url and --auth-introspection-url")
    from mcpvisor.runtime.auth import AuthSettings, IntrospectionVerifier, JWTVerifier

    audience = args.auth_audience or [resource]
    verifier: Any
    try:
        if jwks is not None:
            if not args.auth_issuer:
                raise AuthFlagError("--auth-jwks-url needs --auth-issuer (the exact iss of the tokens)")
            verifier = JWTVerifier(jwks_url=jwks, issuer=args.auth_issuer, audience=audience)
        else:
            secret = args.auth_client_secret or os.environ.get(SECRET_ENV)
            if (args.auth_client_id is None) != (secret is None):
                raise AuthFlagError(
                    f"--auth-client-id needs its secret (--auth-client-secret or {SECRET_ENV}), "
                    "and the other way round"
                )
            verifier = IntrospectionVerifier(
                introspection_url=introspection,
                audience=audience,
                client_id=args.auth_client_id,
                client_secret=secret,
                issuer=args.auth_issuer,
            )
        servers = args.auth_authorization_server or ([args.auth_issuer] if args.auth_issuer else [])
        if not servers:
            raise AuthFlagError("name the authorization server: --auth-issuer or --auth-authorization-server")
        scopes = (args.auth_required_scopes or "").replace(",", " ").split()
        return AuthSettings(
            verifier=verifier, resource_url=resource, authorization_servers=servers, required_scopes=scopes
        )
    except (ValueError, TypeError) as exc:
        raise AuthFlagError(str(exc)) from exc
    except ImportError as exc:
        hint = "authorization needs the auth extra: pip install 'mcpvisor[auth]'"
        raise AuthFlagError(f"{exc} ({hint})") from exc
