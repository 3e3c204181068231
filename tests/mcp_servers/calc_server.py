"""An MCP server for the tests, written with the official SDK: ``python calc_server.py stdio``
or ``python calc_server.py http PORT``. Each tool exercises one thing the client must handle."""

from __future__ import annotations

import base64
import os
import sys

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from pydantic import BaseModel

server = MCPServer("calc")


class Sum(BaseModel):
    total: int


@server.tool()
def add(a: int, b: int) -> Sum:
    """Add two integers."""
    return Sum(total=a + b)


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ValueError(f"refused: {reason}")


@server.tool()
def logo() -> Image:
    """A tiny PNG."""
    return Image(data=base64.b64decode(_PNG), format="png")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    await anyio.sleep(seconds)
    return "awake"


@server.tool()
def crash() -> str:
    """The server process exits at once, mid-call."""
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool(name="big.report")
def big_report(size: int) -> str:
    """A long text, under a name with a dot."""
    return "x" * size


@server.tool()
async def unlock(door: str, ctx: Context) -> str:
    """Adds the tool `secret_<door>` and says the tools changed."""
    server.add_tool(_secret, name=f"secret_{door}", description="The secret word.")
    await ctx.notify_tools_changed()
    # Over HTTP the event travels on the listen stream, apart from this answer: give it time to
    # arrive first (over stdio both share one pipe, in order).
    await anyio.sleep(0.3)
    return "unlocked"


def _secret() -> str:
    return "swordfish"


_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
