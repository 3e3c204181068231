"""Handoffs: the model hands the conversation to another agent, which answers from there on.

``Agent(..., handoffs=[billing, handoff(support, input_filter=...)])`` offers each target as a
tool ``transfer_to_<name>``. When the model calls one, the call is answered ("Transferred to
billing."), the turn's other calls run as usual, and the run goes on with the target's
instructions (they replace the first system message), model, tools, output type, limits of its
own excepted (the run's limits hold throughout, so a ping-pong of handoffs ends at them). The
transcript so far goes with it, through the handoff's `input_filter` when it has one. The result
says which agent answered (`RunResult.agent`).

Handoffs go one way (a target is built before the agent that hands off to it), and a target
cannot bring toolsets yet: an MCP server's tools belong to the agent that lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._context import RunContext
from ._errors import UsageError
from ._tools import api_tool_name

if TYPE_CHECKING:
    from ._agent import Agent
    from ._loop.plan import RunPlan
    from ._messages import Message
    from ._tools import Tool

__all__ = ["Handoff", "HandoffPlan", "InputFilter", "handoff", "handoff_tool"]

InputFilter = Callable[[list["Message"]], Sequence["Message"]]
"""Shortens or rewrites the transcript that goes to the agent taking over."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """A handoff to `agent`, offered as the tool `tool_name` (see `handoff`)."""

    agent: Agent[Any]
    tool_name: str
    description: str
    input_filter: InputFilter | None = None


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    """What the loop needs of a handoff: the target's plan and the transcript's filter."""

    target: RunPlan
    input_filter: InputFilter | None


def handoff(
    agent: Agent[Any],
    *,
    tool_name: str | None = None,
    description: str | None = None,
    input_filter: InputFilter | None = None,
) -> Handoff:
    """A handoff to `agent` (which needs a ``name``), with the tool name (by default
    ``transfer_to_<name>``), the tool's description and an input filter of your choice."""
    if not agent.name:
        raise UsageError("a handoff target needs a name: Agent(..., name='billing')")
    name = tool_name or api_tool_name(f"transfer_to_{agent.name}")
    text = description or (
        f"Hand the conversation to the {agent.name} agent, which answers the user from then on."
    )
    return Handoff(agent, name, text, input_filter)


def handoff_tool(item: Handoff) -> Tool:
    """The tool the model calls to hand over: it records the handoff for the loop."""
    from ._tools import Tool

    target = item.agent.name

    async def transfer(ctx: RunContext[Any]) -> str:
        taken = ctx.budget.handoffs if ctx.budget is not None else None
        if taken:
            return f"Not transferred: the conversation was handed over once this turn ({taken[0]})."
        if taken is not None:
            taken.append(item.tool_name)
        return f"Transferred to {target}."

    schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    # sequential: handoffs of one turn run in call order, so the first one called wins
    return Tool.from_schema(
        item.tool_name, item.description, schema, transfer, rerun=True, sequential=True
    )
