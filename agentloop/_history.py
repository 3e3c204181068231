"""`repair_history`: a saved conversation made acceptable to the API again."""

from __future__ import annotations

from collections.abc import Sequence

from ._messages import AssistantMessage, Message, ToolMessage

__all__ = ["UNANSWERED", "repair_history"]

UNANSWERED = "Tool call not answered: the earlier run stopped before it finished."


def repair_history(messages: Sequence[Message]) -> list[Message]:
    """Answer every tool call that has no answer, so the API accepts the history.

    A history saved from an interrupted run may end with (or contain) an assistant turn whose tool
    calls were never answered; the API rejects that with a 400.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    repaired: list[Message] = []
    pending: list[Message] = []
    for message in messages:
        if pending and not isinstance(message, ToolMessage):
            repaired.extend(pending)
            pending = []
        repaired.append(message)
        if isinstance(message, AssistantMessage):
            pending = [
                ToolMessage(call.id, UNANSWERED, call.name, is_error=True)
                for call in message.tool_calls
                if call.id not in answered
            ]
    repaired.extend(pending)
    return repaired
