"""MCP servers' tools for agents: ``Agent(model, toolsets=[MCPServer.stdio("server-command")])``.

Needs the ``mcp`` extra (``pip install 'agentloop[mcp]'``): the official MCP SDK speaks the
protocol. See ``docs/mcp.md``.
"""

from .._errors import MCPServerError, MCPTimeoutError
from ._convert import MCPToolError
from ._server import MCPServer

__all__ = ["MCPServer", "MCPServerError", "MCPTimeoutError", "MCPToolError"]
