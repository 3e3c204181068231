"""Offline testing for agents: a fake chat-completions server, a function model, a network guard.

- `FakeServer`: scripted replies over real JSON and SSE behind `httpx.MockTransport`; records the
  requests it received and fails the test when its script is not used up.
- `FunctionModel`: a callback from the messages and request to a reply.
- `block_network`: makes any real network connection fail (loopback stays allowed).
"""

from ._fake_server import FakeServer, Reply, error, reply, tool_call
from ._function_model import FunctionModel, RequestInfo, call, calls, last_tool_results
from ._guard import NetworkBlockedError, block_network

__all__ = [
    "FakeServer",
    "FunctionModel",
    "NetworkBlockedError",
    "Reply",
    "RequestInfo",
    "block_network",
    "call",
    "calls",
    "error",
    "last_tool_results",
    "reply",
    "tool_call",
]
