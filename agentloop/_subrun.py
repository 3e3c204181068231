"""Agents as tools: `Agent.as_tool` runs another agent inside a tool call of the parent run.

The sub-run is bounded by what its parent had left when it started (`RunBudget.limits_for`),
its usage and cost join the parent's (and are kept per agent on the result), and cancelling the
parent cancels it: it is awaited inside the parent's tool call. A sub-run that fails gives its
error to the parent's model as the tool's error, its spending counted all the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._context import RunContext
from ._errors import AgentloopError, UsageError

if TYPE_CHECKING:
    from ._agent import Agent
    from ._limits import Limits
    from ._tools import Tool
    from ._usage import Usage

__all__ = ["AgentSpend", "RunBudget", "agent_tool", "runs_an_agent"]

_MARK = "__agentloop_runs_agent__"

N = TypeVar("N", int, float)

_PROMPT = {
    "type": "object",
    "properties": {
        "prompt": {
            "type": "string",
            "description": "The whole task: the agent sees nothing else of this conversation.",
        }
    },
    "required": ["prompt"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class AgentSpend:
    """What one sub-run spent: its agent's name, its usage and its cost (None: unknown)."""

    agent: str
    usage: Usage
    cost: float | None


@dataclass(slots=True)
class RunBudget:
    """A run's limits and what it has used, as its sub-runs see them (``RunContext.budget``).

    `spent` is where sub-runs leave what they spent, and `handoffs` the handoff tools the model
    called; the run's loop takes both after each turn of tool calls.
    """

    limits: Limits
    usage: Usage
    cost: Callable[[], float | None]
    spent: list[AgentSpend] = field(default_factory=lambda: [])
    handoffs: list[str] = field(default_factory=lambda: [])

    def limits_for(self, own: Limits) -> Limits:
        """A sub-run's limits: its agent's own, capped by what this run has left (turns and
        repeated calls are per conversation: the smaller of the two)."""
        mine, used = self.limits, self.usage
        cost = self.cost()
        return dataclasses.replace(
            own,
            max_turns=_least(own.max_turns, mine.max_turns),
            max_requests=_least(own.max_requests, _left(mine.max_requests, used.requests)),
            max_input_tokens=_least(
                own.max_input_tokens, _left(mine.max_input_tokens, used.input_tokens)
            ),
            max_output_tokens=_least(
                own.max_output_tokens, _left(mine.max_output_tokens, used.output_tokens)
            ),
            max_total_tokens=_least(
                own.max_total_tokens, _left(mine.max_total_tokens, used.total_tokens)
            ),
            max_cost=_least(own.max_cost, _left(mine.max_cost, cost or 0.0)),
            max_repeated_calls=_least(own.max_repeated_calls, mine.max_repeated_calls),
        )


def _least(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _left(limit: N | None, used: N) -> N | None:
    return None if limit is None else max(limit - used, 0)


def agent_tool(agent: Agent[Any], name: str | None, description: str | None) -> Tool:
    """`agent` as a tool of another agent (see `Agent.as_tool`)."""
    from ._tools import Tool

    tool_name = name or agent.name
    if not tool_name:
        raise UsageError("as_tool needs a name: Agent(..., name='researcher') or as_tool(name=...)")
    text = description or (
        f"Ask the {tool_name} agent. Give it the whole task in `prompt`; it answers with its "
        "result."
    )

    async def ask(ctx: RunContext[Any], prompt: str) -> Any:
        budget = ctx.budget
        limits = budget.limits_for(agent.limits) if budget is not None else None
        try:
            result = await agent.run(prompt, deps=ctx.deps, limits=limits)
        except AgentloopError as exc:
            if budget is not None and exc.usage is not None:
                budget.spent.append(AgentSpend(tool_name, exc.usage, exc.cost))
            raise
        if budget is not None:
            budget.spent.append(AgentSpend(tool_name, result.usage, result.cost))
        return result.output

    setattr(ask, _MARK, True)
    return Tool.from_schema(tool_name, text, _PROMPT, ask)


def runs_an_agent(item: Tool) -> bool:
    """Whether `item` was made by `Agent.as_tool` (its run needs a `RunBudget`)."""
    return getattr(item.function, _MARK, False) is True
