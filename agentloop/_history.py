"""The messages a run starts from: instructions, the repaired history, the new prompt."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._messages import AssistantMessage, Message, SystemMessage, ToolMessage
from ._prompt import parse_prompt

if TYPE_CHECKING:
    from ._agent import Agent, Prompt
    from ._context import RunContext
    from ._loop.output_step import OutputStep

__all__ = ["initial_messages", "repair_history"]

UNANSWERED = "Tool call not answered: the earlier run stopped before it finished."


async def initial_messages(
    agent: Agent[Any],
    ctx: RunContext[Any],
    step: OutputStep,
    prompt: Prompt | None,
    history: Sequence[Message] | None,
) -> list[Message]:
    """System prompt (current instructions replace a stored one), history, then the prompt.

    The prompt is checked (see `agentloop._prompt`) before anything else runs. Its leading system
    messages join the agent's instructions in the first system message; its other messages go
    after the history, and the whole conversation goes through `repair_history`.
    """
    past = list(history or ())
    given = parse_prompt(prompt, past) if prompt is not None else []
    lead = next((i for i, m in enumerate(given) if not isinstance(m, SystemMessage)), len(given))
    extra = [m.content for m in given[:lead] if isinstance(m, SystemMessage)]
    if given and lead == len(given) and all(isinstance(m, SystemMessage) for m in past):
        raise UsageError("the prompt has only system messages and there is no history to answer")
    messages: list[Message] = []
    system = await _instructions(agent, ctx, step, extra)
    if system:
        messages.append(SystemMessage(system))
    while past and isinstance(past[0], SystemMessage) and system:
        past.pop(0)
    rest = [*past, *given[lead:]]
    if not rest:
        raise UsageError("run needs a prompt, a history, or both")
    messages.extend(repair_history(rest))
    return messages


async def _instructions(
    agent: Agent[Any], ctx: RunContext[Any], step: OutputStep, extra: Sequence[str]
) -> str:
    source = agent.instructions
    text = ""
    if isinstance(source, str):
        text = source
    elif source is not None:
        value = source(ctx)
        text = await value if inspect.isawaitable(value) else value
    parts = [p for p in (text, *extra, step.instructions) if p]
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
