"""A small MCP server (the official SDK's `MCPServer`): search and read a handful of notes.

python examples/mcp_notes/server.py            # over stdio, as an agent starts it
python examples/mcp_notes/server.py --http 8123  # over streamable HTTP on 127.0.0.1
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

NOTES = {
    "trio": "trio runs async code with structured concurrency: every task lives in a nursery.",
    "anyio": "anyio runs the same async code on asyncio or trio.",
    "httpx": "httpx is an HTTP client with sync and async APIs.",
    "aiohttp": "aiohttp is an asyncio HTTP client and server with a C parser.",
}

server = MCPServer("notes", instructions="Search the notes, then read the ones that match.")


@server.tool()
def search(query: str) -> list[str]:
    """The titles of the notes whose text mentions `query` (case-insensitive)."""
    needle = query.lower()
    return [title for title, text in NOTES.items() if needle in (title + " " + text).lower()]


@server.tool()
def read(title: str) -> str:
    """The text of the note with this title."""
    if title not in NOTES:
        raise ToolError(f"no note titled {title!r}; search first")  # the model sees this
    return NOTES[title]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
