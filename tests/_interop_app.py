"""A server using every part of the Server API, for the official SDK client to check our wire forms."""

from __future__ import annotations

import enum
from typing import Annotated

import attrs
from mcpvisor.runtime.server import Completion, Context, Image, Server, ToolError

server = Server("interop", "1.0", instructions="For the SDK interop test.")


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Forecast:
    city: str
    unit: Unit
    highs: list[float]


@server.tool(annotations={"readOnlyHint": True})
def forecast(city: Annotated[str, "City name"], days: int = 2, unit: Unit = Unit.C) -> Forecast:
    """Daily highs."""
    if city == "Atlantis":
        raise ToolError("unknown city: Atlantis")
    return Forecast(city, unit, [20.5] * days)


@server.tool
def total(numbers: list[int]) -> int:
    return sum(numbers)


@server.tool
async def picture(ctx: Context) -> list[object]:
    await ctx.info("drawing")
    return ["a dot:", Image(b"\x89PNG\r\n", mime_type="image/png")]


@server.resource("config://app", mime_type="text/plain")
def config() -> str:
    return "debug = true"


@server.resource_template("blob://{size}", mime_type="application/octet-stream")
def blob(size: int) -> bytes:
    return bytes(range(size))


@server.prompt(title="Review")
def review(code: str, strict: bool = False) -> list[tuple[str, str]]:
    """Ask for a review."""
    return [("user", f"review{' strictly' if strict else ''}: {code}"), ("assistant", "Sure.")]


@server.completion("ref/prompt", "review")
def complete_code(argument: str, value: str) -> Completion:
    return Completion([f"{value}{i}" for i in range(3)], total=10, has_more=True)
