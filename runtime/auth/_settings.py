"""`AuthSettings`: how an HTTP server authenticates, and the metadata document it publishes.

The MCP server is an OAuth 2.1 *resource server* (MCP authorization, revisions 2025-11-25 and
2026-07-28): it never issues tokens, it checks them. What a client needs to get one is published as
RFC 9728 protected-resource metadata: which resource this is (``resource_url``, the canonical URL of
the MCP endpoint, also the audience tokens must carry) and which authorization servers issue tokens
for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._verifier import TokenVerifier

WELL_KNOWN: str = "/.well-known/oauth-protected-resource"


def _strings(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in values) if values is not None else ()


def _optional_strings(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else _strings(values)


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"AuthSettings.{name}: {url!r} is not an absolute http(s) URL without a fragment")


@attrs.frozen
class AuthSettings:
    """Turn on authentication for the Streamable HTTP transport.

    ``verifier`` checks the bearer tokens (`JWTVerifier`, `IntrospectionVerifier`, or your own
    `TokenVerifier`). ``resource_url`` is this server's canonical URL as clients reach it
    (``https://mcp.example.com/mcp``): the ``resource`` of the metadata and what the tokens' audience
    must name. ``authorization_servers`` are the issuers' URLs (at least one). Every request needs
    ``required_scopes``; a tool may need more (``@server.tool(required_scopes=[...])``).
    ``scopes_supported`` is advertised in the metadata (default: ``required_scopes`` and every
    tool's ``required_scopes``).
    """

    verifier: TokenVerifier
    resource_url: str
    authorization_servers: tuple[str, ...] = attrs.field(converter=_strings)
    required_scopes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    scopes_supported: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_strings)
    resource_name: str | None = None
    resource_documentation: str | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.verifier, TokenVerifier):
            raise TypeError(
                f"AuthSettings.verifier: {self.verifier!r} has no async verify_token(token) method"
            )
        _check_url("resource_url", self.resource_url)
        if not self.authorization_servers:
            raise ValueError("AuthSettings.authorization_servers: name at least one issuer URL")
        for url in self.authorization_servers:
            _check_url("authorization_servers", url)

    @property
    def metadata_path(self) -> str:
        """Where RFC 9728 puts this resource's metadata: the well-known prefix, then the resource's
        path (``/.well-known/oauth-protected-resource/mcp`` for ``https://host/mcp``)."""
        path = urlsplit(self.resource_url).path.rstrip("/")
        return WELL_KNOWN + path

    @property
    def metadata_url(self) -> str:
        """The absolute URL of the metadata document (the ``resource_metadata`` of a challenge)."""
        parts = urlsplit(self.resource_url)
        return urlunsplit((parts.scheme, parts.netloc, self.metadata_path, "", ""))

    def metadata(self, extra_scopes: Iterable[str] = ()) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata document."""
        scopes = list(self.scopes_supported or dict.fromkeys([*self.required_scopes, *extra_scopes]))
        document: dict[str, Any] = {
            "resource": self.resource_url,
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": ["header"],
        }
        if scopes:
            document["scopes_supported"] = scopes
        if self.resource_name is not None:
            document["resource_name"] = self.resource_name
        if self.resource_documentation is not None:
            document["resource_documentation"] = self.resource_documentation
        return document
