"""Tools and scripted replies shared by the loop tests."""

from __future__ import annotations

from typing import Any

from agentloop import ToolRetry, tool
from agentloop.testing import FunctionModel


def script(*replies: Any) -> FunctionModel:
    """A function model answering with `replies` in order, recording what it saw."""
    queue = list(replies)
    seen: list[Any] = []

    def answer(messages: list[Any], info: Any) -> Any:
        seen.append((messages, info))
        item = queue.pop(0)
        return item(messages) if callable(item) else item

    model = FunctionModel(answer)
    model.seen = seen  # type: ignore[attr-defined]
    return model


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool(max_retries=2)
def flaky(n: int) -> int:
    """Always asks to be called again."""
    raise ToolRetry(f"try again ({n})")
