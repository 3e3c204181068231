"""`Toolset`: tools found when a run starts, not given when the agent is built.

An MCP server is one (`agentloop.mcp.MCPServer`); anything that can list `Tool` objects at run
time can be another. A run enters each toolset's `connect()` before its first request and leaves
it when the run ends, whatever ends it; a toolset the caller holds open (``async with server:``)
is reused as it is. Before each request the run asks the open toolset whether its tools changed
(an MCP server's ``tools/list_changed``) and lists them again when they did.

A failure of the source itself (the server died, never answered) is a `ToolsetError`: raised
inside a tool call, it ends the run rather than being sent to the model as a tool error.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._tools import Tool

__all__ = ["OpenToolset", "Toolset"]


@runtime_checkable
class OpenToolset(Protocol):
    """A toolset connected for a run."""

    @property
    def changed(self) -> bool:
        """The tools changed since the last `list_tools` (they are listed again before the next
        request)."""
        ...

    async def list_tools(self) -> Sequence[Tool]:
        """The tools, as the agent offers them (names already prefixed and unique)."""
        ...


@runtime_checkable
class Toolset(Protocol):
    """A source of tools for `Agent(toolsets=[...])`."""

    @property
    def name(self) -> str:
        """Names the source in errors and logs."""
        ...

    def connect(self) -> AbstractAsyncContextManager[OpenToolset]:
        """Connected for one run (or the connection the caller already holds)."""
        ...
