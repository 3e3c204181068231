"""The messages a run starts from: instructions, the repaired history, the new prompt."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from .._history import repair_history
from .._messages import Message, SystemMessage
from .._prompt import parse_prompt

if TYPE_CHECKING:
    from .._context import RunContext
    from .output_step import OutputStep
    from .plan import Instructions, RunArgs, RunPlan

__all__ = ["initial_messages", "with_instructions"]


async def initial_messages(
    plan: RunPlan, args: RunArgs, ctx: RunContext[Any], step: OutputStep
) -> list[Message]:
    """System prompt (current instructions replace a stored one), history, then the prompt.

    The prompt is checked (see `agentloop._prompt`) before anything else runs. Its leading system
    messages join the agent's instructions in the first system message; its other messages go
    after the history, and the whole conversation goes through `repair_history`.
    """
    past = list(args.history or ())
    given = parse_prompt(args.prompt, past) if args.prompt is not None else []
    lead = next((i for i, m in enumerate(given) if not isinstance(m, SystemMessage)), len(given))
    extra = [m.content for m in given[:lead] if isinstance(m, SystemMessage)]
    if given and lead == len(given) and all(isinstance(m, SystemMessage) for m in past):
        raise UsageError("the prompt has only system messages and there is no history to answer")
    messages: list[Message] = []
    system = await _instructions(plan.instructions, ctx, step, extra)
    if system:
        messages.append(SystemMessage(system))
    while past and isinstance(past[0], SystemMessage) and system:
        past.pop(0)
    rest = [*past, *given[lead:]]
    if not rest:
        raise UsageError("run needs a prompt, a history, or both")
    messages.extend(repair_history(rest))
    return messages


async def with_instructions(
    plan: RunPlan, ctx: RunContext[Any], step: OutputStep, messages: Sequence[Message]
) -> list[Message]:
    """`messages` under `plan`'s instructions: they replace a first system message (the agent
    handed over from had its own), or go first."""
    system = await _instructions(plan.instructions, ctx, step, ())
    rest = list(messages[1:] if messages and isinstance(messages[0], SystemMessage) else messages)
    return [SystemMessage(system), *rest] if system else rest


async def _instructions(
    source: Instructions | None, ctx: RunContext[Any], step: OutputStep, extra: Sequence[str]
) -> str:
    text = ""
    if isinstance(source, str):
        text = source
    elif source is not None:
        value = source(ctx)
        text = await value if inspect.isawaitable(value) else value
    parts = [p for p in (text, *extra, step.instructions) if p]
    return "\n\n".join(parts)
