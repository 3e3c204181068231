"""`RunContext`: what tools, instructions and output validators may ask for by annotation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ._messages import Message
    from ._subrun import RunBudget
    from ._usage import Usage

__all__ = ["RunContext"]

DepsT = TypeVar("DepsT")


@dataclass(slots=True)
class RunContext(Generic[DepsT]):
    """The state of a run, injected into any tool parameter annotated `RunContext[...]`.

    - `deps`: what the caller passed as ``run(..., deps=...)``.
    - `usage`: totals so far; `messages`: the transcript so far.
    - `retries`: re-asks used so far, by tool name (and ``"output"`` for the output).
    - `run_id`: the id bound to every log event of the run.
    - `tool_call_id` / `tool_name`: set inside a tool call.
    - `budget`: the run's limits and what it used, as an agent run as a tool sees them
      (`Agent.as_tool`); None in a run whose agent has no agent tools and no handoffs.
    - `agent`: the name of the agent answering now (a handoff changes it).
    """

    deps: DepsT
    usage: Usage
    messages: list[Message]
    run_id: str = ""
    retries: Mapping[str, int] = field(default_factory=lambda: {})
    tool_call_id: str | None = None
    tool_name: str | None = None
    extra: dict[str, Any] = field(default_factory=lambda: {})
    budget: RunBudget | None = None
    agent: str = "agent"
