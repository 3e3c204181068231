"""Conversations for the history-policy and window tests, and a hypothesis strategy for them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from agentloop import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    WindowBudget,
    tool,
)


def message_size(message: Message) -> int:
    content: Any = getattr(message, "content", None) or ""
    calls = getattr(message, "tool_calls", ())
    return (
        1
        + len(content if isinstance(content, str) else json.dumps(content))
        + sum(len(c.arguments) for c in calls)
    )


def window_budget(limit: int, asker: Any = None, context: int | None = None) -> WindowBudget:
    return WindowBudget(
        limit,
        context or limit * 2,
        (context or limit * 2) - limit,
        lambda messages: sum(message_size(m) for m in messages),
        len,
        asker,
    )


def tool_turn(i: int, result: str = "r") -> list[Message]:
    call = ToolCall(f"c{i}", "look", json.dumps({"i": i}))
    return [AssistantMessage(tool_calls=(call,)), ToolMessage(call.id, result * 10, "look")]


def make_conversation(turns: int, result: str = "r") -> list[Message]:
    messages: list[Message] = [SystemMessage("sys"), UserMessage("question")]
    for i in range(turns):
        messages.extend(tool_turn(i, result))
    return messages


def unpaired_ids(messages: Sequence[Message]) -> set[str]:
    calls = {c.id for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls}
    return calls ^ {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(SystemMessage("s" * draw(st.integers(0, 30))))
    for turn in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["user", "text", "tools"]))
        if kind == "user":
            messages.append(UserMessage("u" * draw(st.integers(0, 40))))
        elif kind == "text":
            messages.append(AssistantMessage("a" * draw(st.integers(0, 40))))
        else:
            count = draw(st.integers(1, 3))
            calls = tuple(ToolCall(f"t{turn}_{i}", "f", "{}") for i in range(count))
            messages.append(AssistantMessage(tool_calls=calls))
            messages.extend(ToolMessage(c.id, "r" * draw(st.integers(0, 60)), "f") for c in calls)
    if not any(isinstance(m, UserMessage) for m in messages):
        messages.insert(
            1 if messages and isinstance(messages[0], SystemMessage) else 0, UserMessage("q")
        )
    return messages


@tool
def fetch(page: int) -> str:
    """Fetch one page of a long document."""
    return f"page {page}: " + "lorem ipsum dolor sit amet " * 60
