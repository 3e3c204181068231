"""The messages a run starts from: instructions, the repaired history, the new prompt."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

if TYPE_CHECKING:
    from ._agent import Agent, Prompt
    from ._context import RunContext
    from ._output_step import OutputStep

__all__ = ["initial_messages", "repair_history"]

UNANSWERED = "Tool call not answered: the earlier run stopped before it finished."


async def initial_messages(
    agent: Agent[Any],
    ctx: RunContext[Any],
    step: OutputStep,
    prompt: Prompt | None,
    history: Sequence[Message] | None,
) -> list[Message]:
    """System prompt (current instructions replace a stored one), history, then the prompt."""
    messages: list[Message] = []
    system = await _instructions(agent, ctx, step)
    if system:
        messages.append(SystemMessage(system))
    past = list(history or ())
    while past and isinstance(past[0], SystemMessage) and system:
        past.pop(0)
    messages.extend(repair_history(past))
    if prompt is not None:
        messages.append(UserMessage(prompt if isinstance(prompt, str) else tuple(prompt)))
    elif not past:
        raise UsageError("run needs a prompt, a history, or both")
    return messages


async def _instructions(agent: Agent[Any], ctx: RunContext[Any], step: OutputStep) -> str:
    source = agent.instructions
    text = ""
    if isinstance(source, str):
        text = source
    elif source is not None:
        value = source(ctx)
        text = await value if inspect.isawaitable(value) else value
    parts = [p for p in (text, step.instructions) if p]
    return "\n\n".join(parts)


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
