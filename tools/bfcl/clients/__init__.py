"""The clients the benchmark compares, on the same server and model.

Each has ``async def answer(case) -> list[dict[str, dict]]``: the calls it made for the case,
decoded as BFCL's checker takes them (``[{tool_name: {argument: value}}]``, names as the model
used them), and ``aclose()``. A client whose output cannot be decoded raises `Undecodable` (BFCL
scores that as wrong, but as right in irrelevance); a client that ends a case on an error of its
framework returns the calls made so far and names the error in ``note``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..cases import Case

Calls = list[dict[str, dict[str, Any]]]

ACKNOWLEDGEMENT = "Done."
"""What every recorded tool answers (BFCL's single-turn categories run nothing)."""


def recorder(name: str, calls: Calls) -> Callable[..., Coroutine[Any, Any, str]]:
    """A tool function named `name` that appends its call to `calls` and acknowledges it."""

    async def record(**arguments: Any) -> str:
        calls.append({name: arguments})
        return ACKNOWLEDGEMENT

    return record


class Undecodable(Exception):
    """The reply holds tool calls that cannot be decoded (for example arguments that are not
    a JSON object)."""


class Client(Protocol):
    name: str
    note: str | None
    """Set by `answer`: why the case ended early (an error's type), or None."""

    async def answer(self, case: Case) -> Calls: ...

    async def aclose(self) -> None: ...


def split_messages(messages: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The system text (None without one) and the user text of a single-turn question."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    users = [m["content"] for m in messages if m["role"] == "user"]
    if len(users) != 1 or len(system) + len(users) != len(messages):
        raise ValueError("only single-turn questions (system messages and one user message)")
    return ("\n\n".join(system) if system else None), users[0]


CLIENT_NAMES = ("agentloop", "raw", "pydantic-ai")


def make_client(name: str, base_url: str, model_name: str) -> Client:
    """A client by name, pointed at `base_url` (``.../v1``)."""
    if name == "agentloop":
        from .agentloop_ import AgentloopClient

        return AgentloopClient(base_url, model_name)
    if name == "raw":
        from .raw import RawClient

        return RawClient(base_url, model_name)
    if name == "pydantic-ai":
        from .pydantic_ai_ import PydanticAIClient

        return PydanticAIClient(base_url, model_name)
    raise ValueError(f"unknown client {name!r}; known: {', '.join(CLIENT_NAMES)}")
