"""Offline testing for agents: a fake chat-completions server, a function model, a network
guard, cassettes.

- `FakeServer`: scripted replies over real JSON and SSE behind `httpx.MockTransport`; records the
  requests it received and fails the test when its script is not used up.
- `FunctionModel`: a callback from the messages and request to a reply.
- `block_network`: makes any real network connection fail (loopback stays allowed).
- `cassette`: records a test's exchanges with the model server to a JSON file, then replays
  them offline (`CassetteError` when a request matches nothing recorded).
"""

import importlib
from typing import TYPE_CHECKING

# Names load on first use (PEP 562 `__getattr__` below): pytest imports this package at start
# for its plugin (`agentloop.testing._pytest_plugin`), in every test session.
if TYPE_CHECKING:
    from .._errors import CassetteError
    from ._cassette import Cassette, CassetteMode, cassette
    from ._fake_server import FakeServer, Reply, error, reply, tool_call
    from ._function_model import FunctionModel, RequestInfo, call, calls, last_tool_results
    from ._guard import NetworkBlockedError, block_network

__all__ = [
    "Cassette",
    "CassetteError",
    "CassetteMode",
    "FakeServer",
    "FunctionModel",
    "NetworkBlockedError",
    "Reply",
    "RequestInfo",
    "block_network",
    "call",
    "calls",
    "cassette",
    "error",
    "last_tool_results",
    "reply",
    "tool_call",
]

_LAZY: dict[str, str] = {
    "CassetteError": ".._errors",
    "Cassette": "._cassette",
    "CassetteMode": "._cassette",
    "cassette": "._cassette",
    "FakeServer": "._fake_server",
    "Reply": "._fake_server",
    "error": "._fake_server",
    "reply": "._fake_server",
    "tool_call": "._fake_server",
    "FunctionModel": "._function_model",
    "RequestInfo": "._function_model",
    "call": "._function_model",
    "calls": "._function_model",
    "last_tool_results": "._function_model",
    "NetworkBlockedError": "._guard",
    "block_network": "._guard",
}


def __getattr__(name: str) -> object:
    """Import a name of `_LAZY` on first use; later uses find it in the module's globals."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
