"""History repair: unanswered tool calls get answers."""

from __future__ import annotations

from agentloop import AssistantMessage, ToolCall, ToolMessage, UserMessage, repair_history


def test_repair_answers_unanswered_tool_calls() -> None:
    history = [
        UserMessage("go"),
        AssistantMessage(tool_calls=(ToolCall("a", "add", "{}"), ToolCall("b", "add", "{}"))),
        ToolMessage("a", "1"),
    ]
    repaired = repair_history(history)
    assert [type(m).__name__ for m in repaired] == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
        "ToolMessage",
    ]
    assert repaired[3].tool_call_id == "b"  # type: ignore[union-attr]
    assert repaired[3].is_error  # type: ignore[union-attr]
    assert repair_history(repaired) == repaired
